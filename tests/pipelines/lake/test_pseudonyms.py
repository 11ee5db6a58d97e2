"""Listener pseudonyms: Spark's JVM expression equals Python's HMAC, and the default key is
refused outside development."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from pydantic import SecretStr

from encore.errors import ConfigurationError
from encore.settings import Settings
from pipelines.lake.pseudonyms import check_pseudonym_secret, listener_key, listener_key_column

pytestmark = [pytest.mark.spark]

IDS = ["u-1", "listener-ä-ß-東京", "", "x" * 300]


@pytest.mark.parametrize("secret", ["short", "k" * 64, "a-much-longer-secret-" * 5])
def test_spark_expression_equals_python_hmac(spark, platform: Settings, secret: str) -> None:
    settings = platform.model_copy(
        update={"lake": platform.lake.model_copy(update={"pseudonym_secret": SecretStr(secret)})}
    )
    frame = spark.createDataFrame([(i,) for i in IDS], "user_id string")
    got = [r[0] for r in frame.select(listener_key_column(settings, "user_id")).collect()]
    expected = [hmac.new(secret.encode(), i.encode(), hashlib.sha256).hexdigest() for i in IDS]
    assert got == expected == [listener_key(settings, i) for i in IDS]
    assert len(set(got)) == len(IDS)


def test_the_default_key_is_refused_outside_development(tmp_path) -> None:
    check_pseudonym_secret(Settings(home=tmp_path, development=True))
    with pytest.raises(ConfigurationError, match="ENCORE_LAKE__PSEUDONYM_SECRET"):
        check_pseudonym_secret(Settings(home=tmp_path, development=False))
    check_pseudonym_secret(
        Settings(home=tmp_path, development=False, lake={"pseudonym_secret": "s" * 40})
    )
