"""The timer heap wakes each workload once, at its latest schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from deferral import timers

T0 = datetime(2023, 11, 22, 12, tzinfo=UTC)


def test_due_keys_come_out_earliest_first_and_only_once() -> None:
    heap: timers.TimerHeap[str] = timers.TimerHeap()
    heap.schedule("b", T0 + timedelta(minutes=2))
    heap.schedule("a", T0 + timedelta(minutes=1))
    heap.schedule("c", T0 + timedelta(minutes=3))
    assert heap.pop_due(T0) == []
    assert heap.pop_due(T0 + timedelta(minutes=2)) == ["a", "b"]
    assert heap.pop_due(T0 + timedelta(minutes=2)) == []
    assert heap.next_due() == T0 + timedelta(minutes=3)
    assert len(heap) == 1


def test_rescheduling_replaces_the_earlier_time() -> None:
    heap: timers.TimerHeap[str] = timers.TimerHeap()
    heap.schedule("a", T0 + timedelta(minutes=1))
    heap.schedule("a", T0 + timedelta(minutes=10))
    assert heap.next_due() == T0 + timedelta(minutes=10)
    assert heap.pop_due(T0 + timedelta(minutes=5)) == []
    assert heap.pop_due(T0 + timedelta(minutes=10)) == ["a"]


def test_a_cancelled_key_never_fires() -> None:
    heap: timers.TimerHeap[str] = timers.TimerHeap()
    heap.schedule("a", T0)
    heap.cancel("a")
    assert heap.next_due() is None
    assert heap.pop_due(T0 + timedelta(days=1)) == []
