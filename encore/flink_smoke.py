"""A bounded Flink SQL job that reads one Kafka topic through the connector and prints a count.

Runs in the Flink environment: ``python -m encore.flink_smoke <topic>``. Prints one JSON line
``{"rows": N, "sum": S}`` so the caller can check it against what it produced.
"""

from __future__ import annotations

import json
import sys

from encore.engines import create_table_env
from encore.settings import Settings


def count_topic(settings: Settings, topic: str) -> dict:
    table_env = create_table_env(settings, streaming=True)
    table_env.execute_sql(f"""
        CREATE TEMPORARY TABLE smoke_source (
            n BIGINT
        ) WITH (
            'connector' = 'kafka',
            'topic' = '{topic}',
            'properties.bootstrap.servers' = '{settings.kafka.servers}',
            'properties.group.id' = 'encore-smoke',
            'scan.startup.mode' = 'earliest-offset',
            'scan.bounded.mode' = 'latest-offset',
            'format' = 'json'
        )
    """)
    with table_env.execute_sql(
        "SELECT COUNT(*) AS c, SUM(n) AS s FROM smoke_source"
    ).collect() as rows:
        last = None
        for row in rows:  # a streaming aggregate emits updates; the last one is final
            last = row
    return {"rows": int(last[0]) if last else 0, "sum": int(last[1]) if last and last[1] else 0}


if __name__ == "__main__":
    print(json.dumps(count_topic(Settings(), sys.argv[1])))
