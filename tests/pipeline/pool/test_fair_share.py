from __future__ import annotations

import pytest

from pipeline.pool.fair_share import extra_wait_s, wait_falls_to_s


def test_each_request_ahead_delays_a_new_one_by_as_much_as_it_has_left_up_to_the_new_ones_audio():
    # A 3 s request beside thirty with 300 s left each, on a model that decodes 30 audio seconds a second: each of
    # them is still running when it ends, having had 3 s too; 90 s of audio in all, 3 s of waiting.
    assert extra_wait_s([300.0] * 30, 3.0, 30.0) == pytest.approx(3.0)
    # A 300 s file beside them waits for all their audio.
    assert extra_wait_s([300.0] * 30, 300.0, 30.0) == pytest.approx(300.0)
    # Requests with less left than the new one's audio delay it by what they have left.
    assert extra_wait_s([10.0, 50.0, 500.0], 100.0, 10.0) == pytest.approx((10 + 50 + 100) / 10)
    assert extra_wait_s([], 100.0, 10.0) == 0.0


def test_a_wait_already_within_the_bound_needs_no_waiting():
    assert wait_falls_to_s([300.0] * 30, 3.0, 30.0, bound_s=60.0) == 0.0


def test_the_wait_falls_to_the_bound_once_the_requests_ahead_have_drained_enough():
    # Three requests with 300 s left, a fourth of 300 s, 10 audio s/s, bound 60 s (600 s of audio): shared
    # fairly, each of the three must be down to 200 s, which takes 3 x 100 s of audio, 30 s.
    assert wait_falls_to_s([300.0] * 3, 300.0, 10.0, bound_s=60.0) == pytest.approx(30.0, abs=0.01)
    # The shortest finishes first: with 20 s and 1000 s left and a bound of 10 s (100 s of audio at 10 s/s), the
    # 20 s one is done after 40 s of audio (20 each), and the long one must fall to 100 s: 880 more, 92 s in all.
    assert wait_falls_to_s([20.0, 1000.0], 500.0, 10.0, bound_s=10.0) == pytest.approx(92.0, abs=0.01)


def test_the_time_it_says_is_when_the_wait_is_back_within_the_bound():
    remaining, work, speed, bound = [40.0, 120.0, 300.0, 300.0, 900.0], 240.0, 25.0, 20.0
    after = wait_falls_to_s(remaining, work, speed, bound)
    served = _served_in(remaining, after * speed)  # each request's share of the audio decoded meanwhile
    left = [max(r - served, 0.0) for r in remaining]
    assert extra_wait_s(left, work, speed) == pytest.approx(bound, abs=0.01)


def _served_in(remaining: list[float], audio: float) -> float:
    """The service s every request has had once ``audio`` is decoded fairly: sum(min(r, s)) == audio."""
    low, high = 0.0, max(remaining)
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if sum(min(r, middle) for r in remaining) < audio else (low, middle)
    return high
