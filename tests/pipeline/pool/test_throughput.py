from __future__ import annotations

import pytest

from pipeline.pool.throughput import Throughput


def test_the_speed_is_unknown_until_a_batch_has_run():
    assert Throughput(workers=2).audio_s_per_s is None


def test_the_speed_is_the_audio_over_the_busy_time_times_the_workers():
    speed = Throughput(workers=2)
    speed.record(audio_s=30.0, elapsed_s=2.0)
    assert speed.audio_s_per_s == pytest.approx(30.0)  # each worker 15 s/s, two of them


def test_long_batches_count_for_more_than_short_ones_and_recent_ones_for_more_than_old_ones():
    speed = Throughput(workers=1)
    speed.record(audio_s=1.0, elapsed_s=0.5)  # a short clip: 2 s/s
    speed.record(audio_s=30.0, elapsed_s=1.0)  # a full clip: 30 s/s
    assert 20 < speed.audio_s_per_s < 30  # the two rates averaged would be 16
    for _ in range(100):
        speed.record(audio_s=10.0, elapsed_s=1.0)
    assert speed.audio_s_per_s == pytest.approx(10.0, rel=0.01)


def test_empty_or_instant_batches_are_not_counted():
    speed = Throughput()
    speed.record(audio_s=0.0, elapsed_s=1.0)
    speed.record(audio_s=5.0, elapsed_s=0.0)
    assert speed.audio_s_per_s is None
