import pytest
from pydantic import ValidationError

from encore.settings import Settings, settings_env


@pytest.fixture(autouse=True)
def no_encore_env(monkeypatch):
    """Defaults are what these tests check: hide the running platform's ENCORE_* variables."""
    import os

    for key in [k for k in os.environ if k.startswith("ENCORE_")]:
        monkeypatch.delenv(key)


def test_defaults_are_embedded_and_off_standard_ports():
    settings = Settings()
    assert settings.spark.master == "local[*]"
    assert settings.flink.jobmanager == ""
    assert settings.kafka.servers == f"localhost:{settings.kafka.port}"
    assert settings.kafka.port != 9092 and settings.redis.port != 6379
    assert settings.postgres.port != 5432 and settings.mlflow.port != 5000
    assert settings.lake_root == str(settings.home / "lake")


def test_production_is_env_vars_only(monkeypatch):
    monkeypatch.setenv("ENCORE_KAFKA__BOOTSTRAP_SERVERS", "b1:9092,b2:9092")
    monkeypatch.setenv("ENCORE_SPARK__MASTER", "spark://master:7077")
    monkeypatch.setenv("ENCORE_FLINK__JOBMANAGER", "jobmanager:8081")
    monkeypatch.setenv("ENCORE_LAKE__ROOT", "s3://encore-lake")
    monkeypatch.setenv("ENCORE_REDIS__URL", "redis://cache:6379/1")
    monkeypatch.setenv("ENCORE_POSTGRES__DSN", "postgresql://app@db:5432/encore")
    settings = Settings()
    assert settings.kafka.servers == "b1:9092,b2:9092"
    assert settings.spark.master == "spark://master:7077"
    assert settings.lake_root == "s3://encore-lake"
    assert settings.redis.effective_url == "redis://cache:6379/1"
    assert settings.postgres.mlflow_dsn == "postgresql://app@db:5432/mlflow"


def test_unknown_setting_is_an_error():
    with pytest.raises(ValidationError, match="nope"):
        Settings(nope=1)


def test_settings_env_round_trips_through_the_environment(monkeypatch, tmp_path):
    original = Settings(home=tmp_path, kafka={"port": 1234}, lake={"storage_options": {"A": "b"}})
    for key, value in settings_env(original).items():
        monkeypatch.setenv(key, value)
    assert Settings() == original
