"""One real round trip through every part of the platform, for `encore smoke` and the demo.

Each check returns a short description of what it proved, or raises.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from encore.errors import EncoreError
from encore.settings import Settings


def check_kafka(settings: Settings) -> str:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"encore-smoke-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.servers, client_id="encore-smoke")
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        producer = KafkaProducer(bootstrap_servers=settings.kafka.servers, acks="all")
        sent = [json.dumps({"n": n}).encode() for n in range(100)]
        for value in sent:
            producer.send(topic, value)
        producer.flush()
        producer.close()
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=settings.kafka.servers,
            auto_offset_reset="earliest",
            consumer_timeout_ms=10_000,
            group_id=f"smoke-{uuid.uuid4().hex[:6]}",
        )
        received = [message.value for _, message in zip(range(len(sent)), consumer, strict=False)]
        consumer.close()
    finally:
        admin.delete_topics([topic])
        admin.close()
    if sorted(received) != sorted(sent):
        raise EncoreError(f"Kafka round trip: sent {len(sent)} records, got back {len(received)}")
    return f"produced and consumed {len(sent)} records on {settings.kafka.servers}"


def check_spark_delta(settings: Settings) -> str:
    from encore.engines import create_spark_session

    spark = create_spark_session(settings, "encore-smoke")
    path = f"{settings.lake_root}/smoke/delta_{uuid.uuid4().hex[:8]}"
    spark.range(10).write.format("delta").save(path)
    spark.range(25).write.format("delta").mode("overwrite").save(path)
    now = spark.read.format("delta").load(path).count()
    then = spark.read.format("delta").option("versionAsOf", 0).load(path).count()
    if (now, then) != (25, 10):
        raise EncoreError(f"Delta time travel: expected 25 rows now, 10 at v0; got {now}, {then}")
    return f"wrote, read and time-travelled a Delta table at {path}"


def check_flink_kafka(settings: Settings) -> str:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    from encore.flinkenv import run_flink_module

    topic = f"encore-flink-smoke-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.servers, client_id="encore-smoke")
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        producer = KafkaProducer(bootstrap_servers=settings.kafka.servers, acks="all")
        for n in range(100):
            producer.send(topic, json.dumps({"n": n}).encode())
        producer.flush()
        producer.close()
        result = run_flink_module(settings, "encore.flink_smoke", topic, timeout_s=300)
    finally:
        admin.delete_topics([topic])
        admin.close()
    if result.returncode != 0:
        raise EncoreError(f"Flink SQL job failed: {result.stderr.strip()[-2000:]}")
    counted = json.loads(result.stdout.strip().splitlines()[-1])
    if counted != {"rows": 100, "sum": sum(range(100))}:
        raise EncoreError(f"Flink read {counted} from Kafka, expected 100 rows summing to 4950")
    return "a Flink SQL job read 100 records from Kafka through the connector"


def check_mlflow(settings: Settings) -> str:
    import mlflow
    import mlflow.pyfunc

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input: list[int], params=None) -> list[int]:
            return model_input

    client_uri = settings.mlflow.effective_tracking_uri
    mlflow.set_tracking_uri(client_uri)
    mlflow.set_experiment("encore-smoke")
    name = "encore-smoke-echo"
    with mlflow.start_run(run_name="smoke") as run:
        mlflow.log_param("kind", "smoke")
        mlflow.log_metric("answer", 42.0)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=Echo(), registered_model_name=name
        )
    model = mlflow.pyfunc.load_model(f"models:/{name}/{info.registered_model_version}")
    if list(model.predict([1, 2, 3])) != [1, 2, 3]:
        raise EncoreError("MLflow: the registered model did not load back as it was logged")
    version = info.registered_model_version
    return f"run {run.info.run_id[:8]} logged; model {name} v{version} loaded back"


def check_redis(settings: Settings) -> str:
    import redis

    client = redis.Redis.from_url(settings.redis.effective_url)
    key = f"smoke:v1:{uuid.uuid4().hex[:8]}"
    client.set(key, "ok", ex=60)
    value = client.get(key)
    client.delete(key)
    if value != b"ok":
        raise EncoreError(f"Redis round trip returned {value!r}")
    return f"set, got and deleted a key at {settings.redis.effective_url}"


def check_postgres(settings: Settings) -> str:
    import psycopg

    with psycopg.connect(settings.postgres.effective_dsn) as conn:
        conn.execute("CREATE TEMPORARY TABLE smoke (n int)")
        conn.execute("INSERT INTO smoke SELECT generate_series(1, 10)")
        (total,) = conn.execute("SELECT sum(n) FROM smoke").fetchone()
    if total != 55:
        raise EncoreError(f"PostgreSQL returned sum {total}, expected 55")
    return f"wrote and read a table at {settings.postgres.effective_dsn}"


CHECKS: dict[str, Callable[[Settings], str]] = {
    "postgres": check_postgres,
    "redis": check_redis,
    "kafka": check_kafka,
    "spark+delta": check_spark_delta,
    "flink+kafka": check_flink_kafka,
    "mlflow": check_mlflow,
}
