"""The senders without a target: pacing, and failing fast when nothing listens."""

from __future__ import annotations

import pytest

from encore.errors import EncoreError
from pipelines.simulation import paced, post_to_api, senders
from tests.conftest import free_port


class FakeClock:
    """``time`` for ``senders``: ``sleep`` advances ``monotonic`` and is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_rate_paces_records(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(senders, "time", clock)
    started = clock.now
    times = [(item, clock.now - started) for item in paced(range(51), rate=100)]
    assert [item for item, _ in times] == list(range(51))
    # item k leaves no earlier than k / rate seconds after the first, and not later
    assert all(at == pytest.approx(k / 100) for k, at in times)

    clock.sleeps.clear()
    assert list(paced(range(10_000), rate=None)) == list(range(10_000))
    assert clock.sleeps == []


def test_post_to_api_fails_fast_when_nothing_listens() -> None:
    with pytest.raises(EncoreError, match="unreachable"):
        post_to_api(f"http://127.0.0.1:{free_port()}", "token", [{"x": 1}])


def test_a_resent_event_starts_a_new_batch() -> None:
    """The API refuses a batch listing one event twice; a re-send goes in the next request."""
    records = [{"event_id": str(i)} for i in range(5)]
    with_resend = [*records[:3], records[1], *records[3:], b"not json", {"bad": 1}, {"bad": 2}]
    batches = list(senders._batches(with_resend, batch_size=4))
    assert (
        batches
        == [
            records[:3],
            b"not json",  # bytes go alone, as soon as they come
            [records[1], *records[3:], {"bad": 1}],
            [{"bad": 2}],
        ]
    )
    for batch in batches:
        if isinstance(batch, list):
            ids = [r["event_id"] for r in batch if "event_id" in r]
            assert len(ids) == len(set(ids)) and len(batch) <= 4
