"""Admission by estimated wait, alone and through the pool: a request that would wait too long for its model is
refused at once with the time after which it would not; a short one among long ones is admitted."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack

import numpy as np
import pytest

from core.errors import OverloadedError
from core.model_files import HubAccess
from core.registry import ModelRegistry, ModelSpec
from core.types import TranscribeOptions
from pipeline.pool import ModelPool, PoolLimits
from pipeline.pool.admission import Admission
from pipeline.pool.throughput import Throughput
from strategies.base import RuntimeContext
from tests.fakes import FakeModels


def _admission(speed: float | None = 10.0, max_wait_s: float | None = 60.0) -> Admission:
    throughput = Throughput(workers=1)
    if speed is not None:
        throughput.record(audio_s=speed, elapsed_s=1.0)
    return Admission("m", throughput, max_wait_s)


def test_requests_are_admitted_while_their_estimated_wait_is_within_the_bound():
    admission = _admission(speed=10.0, max_wait_s=60.0)
    first, second, third = (admission.admit(300.0) for _ in range(3))  # waits of 0, 30 and 60 s
    assert admission.queued_audio_s() == 900.0 and admission.estimated_wait_s(300.0) == pytest.approx(90.0)
    with pytest.raises(OverloadedError) as refused:
        admission.admit(300.0)
    # The three would each have to be down to 200 s: 300 s of audio decoded, 30 s at 10 s/s.
    assert refused.value.retry_after_s == pytest.approx(30.0, abs=0.1)
    assert refused.value.input == "model" and "would wait about 90 s, over the limit of 60 s" in refused.value.message
    short = admission.admit(3.0)  # 3 s behind each of them: 0.9 s
    for share in (first, second, third, short):
        admission.leave(share)
    assert admission.queued_audio_s() == 0.0


def test_what_the_batcher_has_taken_no_longer_counts():
    admission = _admission(speed=10.0, max_wait_s=60.0)
    shares = [admission.admit(300.0) for _ in range(3)]
    for share in shares:
        share.taken_s = 250.0
    assert admission.queued_audio_s() == 150.0
    admission.admit(300.0)  # 150 s of audio ahead: 15 s


def test_everything_is_admitted_while_the_speed_is_unknown_or_without_a_bound():
    for admission in (_admission(speed=None), _admission(max_wait_s=None)):
        for _ in range(50):
            admission.admit(3600.0)
        assert admission.queued_audio_s() == 50 * 3600.0


def test_when_the_first_request_should_leave():
    admission = _admission(speed=10.0)
    assert admission.first_leaves_in_s() is None
    admission.admit(20.0)
    admission.admit(300.0)
    assert admission.first_leaves_in_s() == pytest.approx(4.0)  # 20 s each, 40 s of audio at 10 s/s


# ---------------------------------------------------------------------------------------------- through the pool


def _pool(models: FakeModels, **limits) -> ModelPool:
    registry = ModelRegistry([ModelSpec(id="a", engine="ctranslate2", model="a")])
    limits = {"max_inflight_per_model": 1, "max_batch_size": 1, **limits}
    return ModelPool(registry, RuntimeContext("cpu", HubAccess()), factory=models.engine, limits=PoolLimits(**limits))


def _measured(pool: ModelPool, audio_s_per_s: float) -> None:
    """The model has decoded a first request; its speed is then as measured on real batches (set here)."""
    with pool.use(pool.registry.get("a")) as lease:
        lease.decode([np.zeros(1600, dtype=np.float32)], TranscribeOptions())
    admission = pool.admission("a")
    assert admission is not None and admission.throughput.audio_s_per_s is not None
    for _ in range(200):  # the first, instant batch forgotten
        admission.throughput.record(audio_s=audio_s_per_s, elapsed_s=1.0)


def test_the_pool_refuses_a_long_file_behind_long_files_at_once_and_admits_a_short_request(fake_models):
    pool = _pool(fake_models, max_estimated_wait_s=60.0, max_queued_per_model=100)
    _measured(pool, audio_s_per_s=30.0)
    spec = pool.registry.get("a")
    with ExitStack() as held:
        for _ in range(7):  # 6 x 300 s ahead of the 7th: 60 s
            held.enter_context(pool.use(spec, audio_s=300.0))
        with pytest.raises(OverloadedError) as refused:
            held.enter_context(pool.use(spec, audio_s=300.0))
        assert 1 <= refused.value.retry_after_s < 60
        with pool.use(spec, audio_s=3.0) as lease:  # 7 x 3 s ahead: 0.7 s
            assert lease.decode([np.zeros(3 * 16000, dtype=np.float32)], TranscribeOptions())[0].text == "a heard 3.0s"
        assert pool.state("a").leases == 7
    assert pool.state("a").leases == 0 and pool.admission("a").queued_audio_s() == 0.0
    pool.close()


def test_a_request_that_says_nothing_of_its_audio_is_never_refused_for_its_wait(fake_models):
    pool = _pool(fake_models, max_estimated_wait_s=1.0)
    _measured(pool, audio_s_per_s=1.0)
    spec = pool.registry.get("a")
    with pool.use(spec, audio_s=3600.0), pool.use(spec) as live_turn:
        assert live_turn.share.work_s == 0.0
    pool.close()


def test_the_wait_counts_only_what_requests_in_flight_have_left(fake_models):
    pool = _pool(fake_models, max_estimated_wait_s=10.0)
    _measured(pool, audio_s_per_s=10.0)
    fake_models.gate = threading.Event()
    spec = pool.registry.get("a")
    done = threading.Event()

    def long_request() -> None:
        with pool.use(spec, audio_s=300.0) as lease:
            clips = [np.zeros(30 * 16000, dtype=np.float32)] * 10
            lease.decode(clips, TranscribeOptions())
        done.set()

    threading.Thread(target=long_request, daemon=True).start()
    _wait_for(lambda: pool.state("a").leases == 1)
    with pytest.raises(OverloadedError):  # 300 s ahead: 30 s
        with pool.use(spec, audio_s=300.0):
            pass
    fake_models.gate.set()
    assert done.wait(10)
    with pool.use(spec, audio_s=300.0):  # it has gone
        pass
    pool.close()


def _wait_for(condition) -> None:
    deadline = time.monotonic() + 5
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


def test_a_full_queue_says_when_to_try_again(fake_models):
    pool = _pool(fake_models, max_queued_per_model=1)
    _measured(pool, audio_s_per_s=10.0)
    spec = pool.registry.get("a")
    with pool.use(spec, audio_s=20.0), pool.use(spec, audio_s=100.0):
        with pytest.raises(OverloadedError) as refused:
            with pool.use(spec, audio_s=1.0):
                pass
    assert refused.value.retry_after_s == pytest.approx(4.0)  # 20 s each: 40 s of audio at 10 s/s
    assert "try again in 4 s" in refused.value.message  # what a realtime error event, which has no header, says
    pool.close()
