from __future__ import annotations

import threading
import time

import pytest

from bulk.executors.replicas import NoReplicaAvailable, ReplicaSet


def test_the_replica_with_the_fewest_requests_in_flight_is_chosen_up_to_the_cap():
    replicas = ReplicaSet(["a", "b"], cap=2)
    taken = [replicas.acquire(timeout_s=0).url for _ in range(4)]
    assert sorted(taken) == ["a", "a", "b", "b"] and taken[:2] in (["a", "b"], ["b", "a"])
    with pytest.raises(NoReplicaAvailable):
        replicas.acquire(timeout_s=0.05)


def test_a_waiting_request_gets_the_first_freed_room():
    replicas = ReplicaSet(["a"], cap=1)
    first = replicas.acquire()
    got: list[str] = []
    waiter = threading.Thread(target=lambda: got.append(replicas.acquire(timeout_s=5).url))
    waiter.start()
    time.sleep(0.05)
    assert got == []
    replicas.succeeded(first)
    waiter.join(5)
    assert got == ["a"]


def test_the_replica_that_just_failed_a_request_is_avoided_while_another_has_room():
    replicas = ReplicaSet(["a", "b"], cap=4)
    assert replicas.acquire(avoid="a").url == "b"
    assert replicas.acquire(avoid="b").url == "a"
    solo = ReplicaSet(["a"], cap=4)
    assert solo.acquire(avoid="a").url == "a"  # nowhere else to go


def test_consecutive_failures_eject_a_replica_until_it_is_readmitted():
    events: list[str] = []
    replicas = ReplicaSet(["a", "b"], cap=4, eject_after=2, on_event=events.append)
    a = replicas.replicas[0]
    for _ in range(2):
        replicas.acquire(avoid="b")
        replicas.failed(a)
    assert a.ejected and [r.url for r in replicas.ejected()] == ["a"]
    assert {replicas.acquire().url for _ in range(3)} == {"b"}
    replicas.readmit(a)
    assert not a.ejected and a.consecutive_failures == 0
    assert "ejected a" in events[0] and "re-admitted a" in events[1]


def test_a_success_resets_the_failure_count():
    replicas = ReplicaSet(["a"], cap=4, eject_after=2)
    a = replicas.replicas[0]
    replicas.acquire()
    replicas.failed(a)
    replicas.acquire()
    replicas.succeeded(a)
    replicas.acquire()
    replicas.failed(a)
    assert not a.ejected and a.served == 1


def test_retry_after_keeps_requests_away_from_a_replica_that_long():
    replicas = ReplicaSet(["a", "b"], cap=4)
    a = replicas.replicas[0]
    replicas.acquire(avoid="b")
    replicas.released(a, retry_after_s=0.3)
    assert not a.ejected
    assert {replicas.acquire().url for _ in range(3)} == {"b"}
    solo = ReplicaSet(["a"], cap=4)
    replicas_a = solo.replicas[0]
    solo.acquire()
    solo.released(replicas_a, retry_after_s=0.3)
    started = time.monotonic()
    assert solo.acquire(timeout_s=5).url == "a"
    assert time.monotonic() - started >= 0.25
