"""The bound on open live sessions, in all and per client."""

from __future__ import annotations

import pytest

from core.errors import ErrorKind, OverloadedError
from pipeline.live.capacity import SESSION_LIMIT_CODE, SessionCapacity


def test_the_total_bound_refuses_one_more_and_a_release_makes_room():
    capacity = SessionCapacity(max_sessions=2, max_per_client=0)
    capacity.take("a")
    capacity.take(None)
    with pytest.raises(OverloadedError) as refused:
        capacity.take("b")
    assert refused.value.kind == ErrorKind.OVERLOADED and refused.value.code == SESSION_LIMIT_CODE
    assert refused.value.retry_after_s and "serves 2 realtime sessions" in refused.value.message
    capacity.release(None)
    capacity.take("b")
    assert capacity.open == 2


def test_the_bound_per_client_leaves_other_clients_and_unnamed_ones_alone():
    capacity = SessionCapacity(max_sessions=10, max_per_client=2)
    capacity.take("key-0")
    capacity.take("key-0")
    with pytest.raises(OverloadedError) as refused:
        capacity.take("key-0")
    assert "Your API key already has 2 realtime sessions open" in refused.value.message
    capacity.take("key-1")
    for _ in range(3):
        capacity.take(None)
    capacity.release("key-0")
    capacity.take("key-0")
    assert capacity.open == 6


def test_zero_means_no_bound():
    capacity = SessionCapacity(max_sessions=0, max_per_client=0)
    for _ in range(1000):
        capacity.take("key-0")
    assert capacity.open == 1000
