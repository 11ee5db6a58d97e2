import os
import subprocess
import sys
from pathlib import Path

import pytest

from encore.settings import Settings, SettingsError, settings_env, unknown_env_vars


@pytest.fixture(autouse=True)
def no_encore_env(monkeypatch):
    """Defaults are what these tests check: hide the running platform's ENCORE_* variables."""
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
    with pytest.raises(SettingsError, match="ENCORE_NOPE is not a setting"):
        Settings(nope=1)
    with pytest.raises(SettingsError, match="ENCORE_API__NOPE is not a setting"):
        Settings(api={"nope": 1})


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        # a misspelled secret: before, the built-in default stayed in place without a word
        (
            "ENCORE_API__JWT_SECRT",
            "ENCORE_API__JWT_SECRT is not a setting; did you mean ENCORE_API__JWT_SECRET?",
        ),
        (
            "ENCORE_KAFAK__PORT",
            "ENCORE_KAFAK__PORT is not a setting; did you mean ENCORE_KAFKA__PORT?",
        ),
        ("ENCORE_HOMEDIR", "ENCORE_HOMEDIR is not a setting; did you mean ENCORE_HOME?"),
        ("encore_flink__paralelism", "encore_flink__paralelism is not a setting; did you mean "),
        ("ENCORE_ZZZ__QQQ", "ENCORE_ZZZ__QQQ is not a setting"),
    ],
)
def test_an_unknown_variable_is_refused_naming_it(monkeypatch, variable, message):
    monkeypatch.setenv(variable, "19093")
    with pytest.raises(SettingsError) as raised:
        Settings()
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_a_section_given_as_json_refuses_an_unknown_key(monkeypatch):
    monkeypatch.setenv("ENCORE_API", '{"jwt_secrt": "x"}')
    with pytest.raises(SettingsError, match="ENCORE_API__JWT_SECRT is not a setting; did you"):
        Settings()


def test_dict_settings_take_any_key_and_scripts_variables_pass(monkeypatch):
    monkeypatch.setenv("ENCORE_LAKE__STORAGE_OPTIONS__AWS_REGION", "eu-west-1")
    monkeypatch.setenv("ENCORE_SETUP_AIRFLOW", "0")
    assert Settings().lake.storage_options == {"aws_region": "eu-west-1"}
    assert unknown_env_vars({"ENCORE_SETUP_AIRFLOW": "0", "ENCORE_X": "1", "PATH": "/"}) == [
        "ENCORE_X"
    ]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ENCORE_KAFKA__PORT", "-1", "ENCORE_KAFKA__PORT: expected greater than or equal to 1"),
        ("ENCORE_REDIS__PORT", "65536", "ENCORE_REDIS__PORT: expected less than or equal to 65535"),
        ("ENCORE_API__PORT", "eighty", "ENCORE_API__PORT: expected a valid integer"),
        ("ENCORE_API__PRODUCE_TIMEOUT_MS", "0", "ENCORE_API__PRODUCE_TIMEOUT_MS: expected greater"),
        ("ENCORE_API__MAX_BATCH_EVENTS", "-5", "ENCORE_API__MAX_BATCH_EVENTS: expected greater"),
        ("ENCORE_FLINK__REDIS_TTL_S", "0", "ENCORE_FLINK__REDIS_TTL_S: expected greater than 0"),
        ("ENCORE_KAFKA__PLAY_EVENTS_PARTITIONS", "0", "PLAY_EVENTS_PARTITIONS: expected greater"),
        ("ENCORE_KAFKA__BOOTSTRAP_SERVERS", "b1:9092,b2", "expected a comma-separated host:port"),
        ("ENCORE_API__LOGIN_RATE_PER_IP", "5 per fortnight", "expected a rate like '5/minute'"),
        ("ENCORE_API__TRUSTED_PROXIES", "10.0.0.0/8,proxy", "expected comma-separated IP"),
    ],
)
def test_an_impossible_value_is_refused_naming_the_variable(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=message) as raised:
        Settings()
    assert "\n" not in str(raised.value)


def test_a_malformed_url_is_refused_without_echoing_it(monkeypatch):
    monkeypatch.setenv("ENCORE_REDIS__URL", "http://:hunter2@cache:6379")
    monkeypatch.setenv("ENCORE_POSTGRES__DSN", "mysql://app:hunter2@db/encore")
    with pytest.raises(SettingsError) as raised:
        Settings()
    message = str(raised.value)
    assert "ENCORE_REDIS__URL: expected empty or a redis://" in message
    assert "ENCORE_POSTGRES__DSN: expected empty or a postgresql://" in message
    assert "hunter2" not in message


def test_every_variable_settings_env_writes_is_a_setting(tmp_path):
    assert unknown_env_vars(settings_env(Settings(home=tmp_path))) == []


@pytest.mark.parametrize("command", [["status"], ["api", "--port", "1"]])
def test_the_cli_prints_one_line_and_exits_2(tmp_path, command):
    """A real ``encore`` process, as a user runs it (``encore api`` never starts uvicorn)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCORE_")}
    env |= {"ENCORE_HOME": str(tmp_path), "ENCORE_API__JWT_SECRT": "s" * 40}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("encore")), *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "error: ENCORE_API__JWT_SECRT is not a setting; did you mean ENCORE_API__JWT_SECRET?\n"
    )
    assert done.stdout == ""


def test_settings_env_round_trips_through_the_environment(monkeypatch, tmp_path):
    original = Settings(home=tmp_path, kafka={"port": 1234}, lake={"storage_options": {"A": "b"}})
    for key, value in settings_env(original).items():
        monkeypatch.setenv(key, value)
    assert Settings() == original
