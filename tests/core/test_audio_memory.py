"""``core/audio_memory.py``: reservations of decoded audio's bytes, given back on every path, a bounded wait when
the budget is full, then a refusal carrying Retry-After."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

from core.audio_memory import AudioMemoryBudget
from core.errors import ErrorKind, OverloadedError, RequestCancelled, TooLargeError

MIB = 2**20


def test_a_reservation_counts_until_released_and_releasing_twice_is_harmless():
    budget = AudioMemoryBudget(10 * MIB)
    first = budget.reserve(4 * MIB)
    second = budget.reserve(6 * MIB)
    assert budget.held_bytes == 10 * MIB and (first.bytes, second.bytes) == (4 * MIB, 6 * MIB)
    first.release()
    first.release()
    assert budget.held_bytes == 6 * MIB
    second.shrink_to(MIB)
    assert budget.held_bytes == MIB


def test_an_array_holds_its_reservation_until_it_and_its_views_are_freed():
    budget = AudioMemoryBudget(10 * MIB)
    reservation = budget.reserve(4 * MIB)
    audio = reservation.hold(np.zeros(MIB // 4, dtype=np.float32))  # 1 MiB: the rest is given back at once
    assert budget.held_bytes == MIB
    clip = audio[10:20]
    del audio
    assert budget.held_bytes == MIB, "a clip of the audio still holds it"
    del clip
    assert budget.held_bytes == 0


def test_a_view_cannot_hold_a_reservation():
    budget = AudioMemoryBudget()
    with pytest.raises(AssertionError):
        budget.reserve(0).hold(np.zeros(10, dtype=np.float32)[2:])


def test_audio_larger_than_the_whole_budget_is_refused_at_once_as_too_large():
    budget = AudioMemoryBudget(10 * MIB, wait_s=60)
    with pytest.raises(TooLargeError) as caught:
        budget.reserve(11 * MIB, input="messages[0].content[1]")
    error = caught.value
    assert error.kind is ErrorKind.TOO_LARGE and error.code == "audio_over_memory_budget"
    assert error.input == "messages[0].content[1]" and "10 MiB" in error.message
    assert budget.held_bytes == 0


def test_a_full_budget_refuses_after_its_wait_with_a_retry_after():
    budget = AudioMemoryBudget(10 * MIB, wait_s=0.05)
    budget.reserve(8 * MIB)
    with pytest.raises(OverloadedError) as caught:
        budget.reserve(4 * MIB)
    error = caught.value
    assert error.kind is ErrorKind.OVERLOADED and error.code == "audio_memory_full" and error.input == "file"
    assert error.retry_after_s is not None and error.retry_after_s >= 1
    assert budget.held_bytes == 8 * MIB


def test_a_request_waiting_for_room_gets_it_when_another_gives_its_back():
    budget = AudioMemoryBudget(10 * MIB, wait_s=30)
    holder = budget.reserve(8 * MIB)
    waiting = threading.Event()
    original_wait = budget._changed.wait

    def wait(timeout=None):  # the waiter is waiting: now the holder lets go
        waiting.set()
        return original_wait(timeout)

    budget._changed.wait = wait
    threading.Thread(target=lambda: (waiting.wait(30), holder.release())).start()
    reservation = budget.reserve(4 * MIB)
    assert waiting.is_set() and reservation.bytes == 4 * MIB and budget.held_bytes == 4 * MIB


def test_without_waiting_a_full_budget_refuses_at_once():
    budget = AudioMemoryBudget(10 * MIB, wait_s=3600)
    budget.reserve(8 * MIB)
    with pytest.raises(OverloadedError):
        budget.reserve(4 * MIB, wait=False)


def test_a_cancelled_request_stops_waiting_and_holds_nothing():
    budget = AudioMemoryBudget(10 * MIB, wait_s=3600)
    budget.reserve(8 * MIB)
    cancelled = threading.Event()
    threading.Timer(0.05, cancelled.set).start()
    with pytest.raises(RequestCancelled):
        budget.reserve(4 * MIB, cancelled=cancelled)
    assert budget.held_bytes == 8 * MIB


def test_audio_only_garbage_still_holds_is_collected_before_a_refusal():
    """An exception's traceback can keep a request's audio in a reference cycle, which only the garbage collector
    frees: a full budget collects once before it waits."""
    budget = AudioMemoryBudget(10 * MIB, wait_s=0.05)
    gc.disable()
    try:
        cycle: list = [budget.reserve(8 * MIB).hold(np.zeros(2 * MIB, dtype=np.float32))]
        cycle.append(cycle)
        del cycle
        assert budget.held_bytes == 8 * MIB
        assert budget.reserve(4 * MIB).bytes == 4 * MIB
    finally:
        gc.enable()


def test_growing_takes_steps_ahead_within_the_limit():
    budget = AudioMemoryBudget(10 * MIB)
    reservation = budget.reserve(MIB)
    reservation.cover(2 * MIB, ahead=4 * MIB)
    assert reservation.bytes == 6 * MIB
    reservation.cover(5 * MIB, ahead=4 * MIB)  # already covered
    assert reservation.bytes == 6 * MIB
    reservation.cover(7 * MIB, ahead=4 * MIB)  # the step stops at the limit
    assert reservation.bytes == 10 * MIB
    with pytest.raises(TooLargeError):
        reservation.cover(11 * MIB)
    assert budget.held_bytes == 10 * MIB
    reservation.shrink_to(MIB)
    other = budget.reserve(7 * MIB)
    reservation.cover(2 * MIB, ahead=4 * MIB, wait=False)  # no room for the step: what is needed
    assert reservation.bytes == 2 * MIB and budget.held_bytes == 9 * MIB
    other.release()


def test_many_threads_reserving_and_releasing_leave_nothing_held_and_never_pass_the_limit():
    budget = AudioMemoryBudget(10 * MIB, wait_s=10)
    most = [0]
    lock = threading.Lock()

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(200):
            audio = budget.reserve(int(rng.integers(1, 3 * MIB))).hold(np.zeros(int(rng.integers(1, 1000)), np.float32))
            with lock:
                most[0] = max(most[0], budget.held_bytes)
            del audio

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert budget.held_bytes == 0 and 0 < most[0] <= 10 * MIB


def test_without_a_limit_the_budget_only_counts():
    budget = AudioMemoryBudget()
    reservation = budget.reserve(2**40)
    assert budget.held_bytes == 2**40
    reservation.release()
    assert budget.held_bytes == 0
