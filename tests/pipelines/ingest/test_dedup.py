"""De-duplication by event id: first copy wins, ids expire, and a restart reloads them."""

from __future__ import annotations

from pipelines.ingest.dedup import RecentIds


def test_the_first_copy_wins_within_and_across_batches() -> None:
    recent = RecentIds(ttl_s=60)
    assert recent.keep_first(["a", "b", "a"], now=100) == [True, True, False]
    assert recent.keep_first(["b", "c"], now=101) == [False, True]
    assert len(recent) == 3


def test_ids_expire_after_the_ttl() -> None:
    recent = RecentIds(ttl_s=60)
    recent.keep_first(["a"], now=100)
    recent.keep_first(["b"], now=150)
    assert recent.keep_first(["a", "b"], now=161) == [True, False]  # a expired, b not


def test_ids_loaded_from_bronze_decide_like_the_undisturbed_run() -> None:
    before_crash = RecentIds(ttl_s=60)
    before_crash.keep_first(["a", "b"], now=100)
    restarted = RecentIds(ttl_s=60)
    restarted.load([("b", 100.0), ("a", 100.0)])  # as bronze returns them, any order
    assert restarted.keep_first(["a", "c"], now=110) == before_crash.keep_first(["a", "c"], now=110)
