"""A session's audio taken in no faster than a multiple of real time, after an allowance (a fake clock)."""

from __future__ import annotations

import math

from pipeline.live.pacing import AudioPacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_allowance_first_then_the_pace():
    clock = Clock()
    pacer = AudioPacer(speed=4.0, burst_s=10.0, clock=clock)
    for _ in range(10):  # ten seconds of audio at once: the allowance
        assert pacer.wait_s(1.0) == 0.0
        pacer.take(1.0)
    assert pacer.wait_s(1.0) == 0.25  # then a second of audio per quarter second
    clock.now += 0.25
    assert pacer.wait_s(1.0) == 0.0
    pacer.take(1.0)
    clock.now += 60  # a pause refills the allowance, never beyond it
    assert pacer.wait_s(10.0) == 0.0 and pacer.wait_s(10.5) == math.inf


def test_more_than_the_allowance_at_once_never_fits():
    pacer = AudioPacer(speed=4.0, burst_s=10.0, clock=Clock())
    assert pacer.wait_s(10.01) == math.inf


def test_speed_zero_is_no_bound():
    pacer = AudioPacer(speed=0.0, burst_s=1.0, clock=Clock())
    for _ in range(100):
        assert pacer.wait_s(600.0) == 0.0
        pacer.take(600.0)
