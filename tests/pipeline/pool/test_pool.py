from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from core.errors import ErrorKind, ModelNotFoundError, ModelUnavailableError, OverloadedError
from core.model_files import HubAccess
from pipeline.pool import ModelPool, PoolLimits
from core.registry import ModelRegistry, ModelSpec
from core.types import TranscribeOptions
from strategies.base import RuntimeContext
from core.types import DiarizeOptions
from tests.fakes import FakeModels, FakeASREngine


def _pool(models: FakeModels, engine_class: type[FakeASREngine] = FakeASREngine, **limits) -> ModelPool:
    """Models "a", "b" and "c" on ``engine_class``."""
    registry = ModelRegistry([ModelSpec(id=i, engine="ctranslate2", model=i) for i in ("a", "b", "c")])
    factory = models.factory_for(engine_class)
    return ModelPool(registry, RuntimeContext("cpu", HubAccess()), factory=factory, limits=PoolLimits(**limits))


def _infer(pool: ModelPool, model_id: str) -> None:
    with pool.use(pool.registry.get(model_id)) as lease:
        lease.decode([np.zeros(1600, dtype=np.float32)], TranscribeOptions())


def _in_background(fn, *args) -> threading.Thread:
    thread = threading.Thread(target=fn, args=args, daemon=True)
    thread.start()
    return thread


def test_preload_loads_pins_and_marks_ready(fake_models):
    pool = _pool(fake_models)
    assert not pool.preloaded.is_set()
    pool.preload(["a"])
    assert pool.preloaded.is_set() and pool.loaded_ids() == ["a"] and fake_models.loads == ["a"]
    assert [s.pinned for s in pool.states()] == [True]


def test_two_models_alternating_do_not_reload_when_both_fit(fake_models):
    pool = _pool(fake_models, memory_budget_bytes=250)
    for model_id in ["a", "b"] * 10:
        _infer(pool, model_id)
    assert fake_models.loads == ["a", "b"] and fake_models.unloads == []
    assert pool.resident_bytes() == 200


def test_least_recently_used_idle_model_is_evicted_when_the_budget_is_exceeded(fake_models):
    pool = _pool(fake_models, memory_budget_bytes=250)
    _infer(pool, "a")
    _infer(pool, "b")
    _infer(pool, "a")  # b is now the least recently used
    _infer(pool, "c")
    assert fake_models.unloads == ["b"] and sorted(pool.loaded_ids()) == ["a", "c"]
    assert pool.resident_bytes() <= 250


def test_pinned_models_are_not_evicted(fake_models):
    pool = _pool(fake_models, memory_budget_bytes=250)
    pool.preload(["a"])
    _infer(pool, "b")
    _infer(pool, "c")
    assert fake_models.unloads == ["b"] and "a" in pool.loaded_ids()


def test_a_request_in_flight_keeps_its_model_through_an_eviction_attempt(fake_models):
    pool = _pool(fake_models, memory_budget_bytes=150)
    fake_models.gate = threading.Event()
    holder = _in_background(_infer, pool, "a")
    _wait_for(lambda: pool.loaded_ids() == ["a"] and pool.states()[0].leases == 1)
    # "b" needs room, but "a" is in use: b is refused, a is untouched.
    with pytest.raises(ModelUnavailableError, match="does not fit"):
        _infer(pool, "b")
    assert fake_models.unloads == [] and pool.loaded_ids() == ["a"]
    fake_models.gate.set()
    holder.join(5)
    # Once idle, "a" can make room.
    _infer(pool, "b")
    assert fake_models.unloads == ["a"] and pool.loaded_ids() == ["b"]


def test_concurrent_first_requests_load_once(fake_models):
    fake_models.load_seconds = 0.2
    pool = _pool(fake_models, max_inflight_per_model=8)
    barrier = threading.Barrier(6)

    def request():
        barrier.wait()
        _infer(pool, "a")

    threads = [_in_background(request) for _ in range(6)]
    for t in threads:
        t.join(5)
    assert fake_models.loads == ["a"]


def test_requests_past_the_queue_limit_get_429(fake_models):
    pool = _pool(fake_models, max_inflight_per_model=1, max_batch_size=1, max_queued_per_model=2)
    fake_models.gate = threading.Event()
    threads = [_in_background(_infer, pool, "a") for _ in range(3)]  # 1 running, 2 queued
    _wait_for(lambda: pool.states() and pool.states()[0].leases == 3)
    with pytest.raises(OverloadedError) as info:
        _infer(pool, "a")
    assert info.value.kind is ErrorKind.OVERLOADED
    _infer_other = _in_background(_infer, pool, "b")  # other models are not affected
    fake_models.gate.set()
    for t in [*threads, _infer_other]:
        t.join(5)
    assert all(s.leases == 0 for s in pool.states())
    _infer(pool, "a")


def test_running_batches_hold_their_requests_before_the_queue_counts(fake_models):
    pool = _pool(fake_models, max_inflight_per_model=1, max_batch_size=4, max_queued_per_model=0, max_batch_wait_s=1.0)
    fake_models.gate = threading.Event()
    threads = [_in_background(_infer, pool, "a") for _ in range(4)]  # four requests, at most four per batch
    _wait_for(lambda: pool.states() and pool.states()[0].leases == 4)
    with pytest.raises(OverloadedError):
        _infer(pool, "a")
    fake_models.gate.set()
    for t in threads:
        t.join(5)
    with pool.use(pool.registry.get("a")) as lease:
        assert sum(lease.engine.batches) == 4


def test_inflight_limit_serializes_inference(fake_models):
    running, peak = [0], [0]
    lock = threading.Lock()

    class Counting(FakeASREngine):
        def transcribe_clips(self, audio, options):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.05)
            with lock:
                running[0] -= 1
            return super().transcribe_clips(audio, options)

    pool = _pool(fake_models, Counting, max_inflight_per_model=2, max_batch_size=1)
    threads = [_in_background(_infer, pool, "a") for _ in range(6)]
    for t in threads:
        t.join(5)
    assert peak[0] == 2


def test_idle_models_past_the_ttl_are_unloaded_but_not_pinned_ones(fake_models):
    pool = _pool(fake_models, idle_ttl_s=0.05)
    pool.preload(["a"])
    _infer(pool, "b")
    time.sleep(0.1)
    # The background reaper (every 0.5 s) may get there first on a loaded machine; either way, "b" goes once.
    assert pool.reap_idle() in (["b"], [])
    assert pool.loaded_ids() == ["a"] and fake_models.unloads == ["b"]
    pool.close()


def test_reaper_thread_unloads_idle_models(fake_models):
    pool = _pool(fake_models, idle_ttl_s=0.1)
    _infer(pool, "b")
    _wait_for(lambda: pool.loaded_ids() == [], timeout=5)
    assert fake_models.unloads == ["b"]
    pool.close()


def test_unknown_model_is_404(fake_models):
    with pytest.raises(ModelNotFoundError):
        _infer(_pool(fake_models), "nope")


def test_failed_load_is_503_fails_fast_then_retries_later(fake_models):
    pool = _pool(fake_models, load_retry_after_s=60)
    fake_models.fail_with = OSError("We couldn't connect to 'https://huggingface.co' ... cached files.")
    with pytest.raises(ModelUnavailableError) as info:
        _infer(pool, "a")
    assert info.value.kind is ErrorKind.UNAVAILABLE and "not in the Hugging Face cache" in info.value.message
    assert info.value.retry_after_s == 60  # when the load will be tried again
    with pytest.raises(ModelUnavailableError) as again:
        _infer(pool, "a")
    assert 0 < again.value.retry_after_s <= 60
    assert fake_models.loads == ["a"], "a second request within the retry window must not retry the load"
    fake_models.fail_with = None
    _infer(pool, "b")  # other models keep working
    pool.limits = PoolLimits(load_retry_after_s=0)
    _infer(pool, "a")
    assert fake_models.loads == ["a", "b", "a"]
    assert all(s.leases == 0 for s in pool.states()), "a failed load leaves no lease behind"


def test_a_failed_preload_is_not_ready_and_is_retried_until_it_loads(fake_models):
    fake_models.fail_with = RuntimeError("boom")
    pool = _pool(fake_models, load_retry_after_s=0)  # retried every second (the floor)
    _in_background(pool.preload, ["a", "b"])
    _wait_for(pool.preloaded.is_set)
    assert pool.loaded_ids() == [] and not pool.is_ready(), "a replica whose models failed takes no traffic"
    fake_models.fail_with = None
    _wait_for(pool.is_ready, timeout=5)
    assert pool.loaded_ids() == ["a", "b"]
    pool.close()


def test_ready_once_every_preloaded_model_is_loaded(fake_models):
    pool = _pool(fake_models)
    assert not pool.is_ready()
    pool.preload(["a"])
    assert pool.is_ready()


def test_unload_releases_memory_and_refuses_models_in_use(monkeypatch: pytest.MonkeyPatch, fake_models):
    released = []
    monkeypatch.setattr("pipeline.pool.pool.release_memory", lambda settle=False: released.append(True))
    pool = _pool(fake_models)
    pool.preload(["a", "b"])
    assert pool.unload("a") and pool.loaded_ids() == ["b"] and released
    fake_models.gate = threading.Event()
    holder = _in_background(_infer, pool, "b")
    _wait_for(lambda: pool.states()[1].leases == 1)
    assert not pool.unload("b")
    fake_models.gate.set()
    holder.join(5)
    assert pool.unload("b")


def _wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_inference_runs_on_the_models_own_stable_threads(fake_models):
    names = set()

    class NotingThreads(FakeASREngine):
        def transcribe_clips(self, clips, options):
            names.add(threading.current_thread().name)
            return super().transcribe_clips(clips, options)

    pool = _pool(fake_models, NotingThreads, max_inflight_per_model=2)
    for _ in range(10):
        _infer(pool, "a")
    assert all(name.startswith("infer-a") for name in names) and 1 <= len(names) <= 2
    assert all(s.leases == 0 for s in pool.states())


def _pool_with_diarizer(models: FakeModels, **limits) -> ModelPool:
    registry = ModelRegistry(
        [
            ModelSpec(id="a", engine="ctranslate2", model="a"),
            ModelSpec(id="b", engine="ctranslate2", model="b"),
            ModelSpec(id="speakers", engine="embedded_diarizer", model="x"),
        ]
    )
    return ModelPool(registry, RuntimeContext("cpu", HubAccess()), factory=models.engine, limits=PoolLimits(**limits))


def _diarize(pool: ModelPool) -> None:
    with pool.use(pool.registry.get("speakers")) as lease:
        assert lease.diarize(np.zeros(1600, dtype=np.float32), DiarizeOptions()), "the fake names two speakers"


def test_a_diarizer_is_held_and_evicted_like_any_model(fake_models):
    pool = _pool_with_diarizer(fake_models, memory_budget_bytes=250)
    pool.preload(["a"])  # pinned: 100 bytes
    _diarize(pool)
    _diarize(pool)
    assert fake_models.diarizer_loads == 1 and pool.resident_bytes() == 200
    _infer(pool, "b")  # does not fit beside both: the idle diarizer, least recently used, makes room
    assert pool.loaded_ids() == ["a", "b"] and fake_models.unloads == []
    _diarize(pool)  # and comes back on demand, in place of the idle "b"
    assert fake_models.diarizer_loads == 2 and pool.loaded_ids() == ["a", "speakers"] and fake_models.unloads == ["b"]


def test_an_idle_diarizer_is_reaped_after_the_ttl(fake_models):
    pool = _pool_with_diarizer(fake_models, idle_ttl_s=0.05)
    _diarize(pool)
    assert "speakers" in pool.loaded_ids() or fake_models.diarizer_loads == 1
    _wait_for(lambda: pool.loaded_ids() == [])  # the pool's reaper unloads it
    assert [s.loaded for s in pool.states()] == [False]


def test_a_leased_diarizer_is_never_evicted(fake_models):
    pool = _pool_with_diarizer(fake_models, memory_budget_bytes=150)
    with pool.use(pool.registry.get("speakers")):
        with pytest.raises(ModelUnavailableError):
            _infer(pool, "a")
    _infer(pool, "a")
    assert pool.loaded_ids() == ["a"]


def test_a_running_batch_keeps_its_model_loaded_after_its_request_has_gone(fake_models):
    pool = _pool(fake_models, memory_budget_bytes=150)
    _infer(pool, "a")
    fake_models.gate = threading.Event()
    # A clip left running by a request that failed or whose client left: no lease is held for it any more.
    orphan = pool._slots["a"].batcher.submit(np.zeros(1600, dtype=np.float32), TranscribeOptions())
    _wait_for(lambda: pool._slots["a"].running_batches == 1)
    assert all(s.leases == 0 for s in pool.states())
    assert not pool.unload("a"), "never unloaded under a running batch"
    with pytest.raises(ModelUnavailableError):
        _infer(pool, "b")  # "a" cannot be evicted to make room
    fake_models.gate.set()
    orphan.result(5)
    _wait_for(lambda: pool._slots["a"].running_batches == 0)
    _infer(pool, "b")
    assert pool.loaded_ids() == ["b"] and fake_models.unloads == ["a"]


def test_building_an_engine_does_not_hold_the_pool_lock(fake_models):
    """A transformers import takes seconds: /v1/models and health checks must not wait for it."""
    pool = _pool(fake_models)
    entered, release = threading.Event(), threading.Event()

    def slow_factory(spec, runtime):
        entered.set()
        assert release.wait(5)
        return FakeASREngine(spec, runtime, fake_models)

    pool._factory = slow_factory
    builder = _in_background(_infer, pool, "a")
    assert entered.wait(5)
    reader = _in_background(pool.states)
    reader.join(2)
    assert not reader.is_alive(), "reading the pool's state waited for the engine being built"
    release.set()
    builder.join(5)
    assert pool.loaded_ids() == ["a"]


def test_a_model_gets_as_many_batch_threads_as_its_engine_has_workers(fake_models):
    class TwoWorkers(FakeASREngine):
        workers = 2

    pool = _pool(fake_models, TwoWorkers)
    _infer(pool, "a")
    assert len([t for t in pool._slots["a"].batcher._threads if t.is_alive()]) == 2
    assert pool._slots["a"].batcher.request_window == 2  # a long file keeps both workers busy, no more
    pinned = _pool(fake_models, TwoWorkers, max_inflight_per_model=3)
    _infer(pinned, "b")
    assert len([t for t in pinned._slots["b"].batcher._threads if t.is_alive()]) == 3
    pool.close()
    pinned.close()


def test_batches_are_as_large_as_the_engine_asks_unless_the_operator_sets_a_size(fake_models):
    class OneClipAtATime(FakeASREngine):
        batch_size = 1

    pool = _pool(fake_models, OneClipAtATime)
    _infer(pool, "a")
    assert pool._slots["a"].batcher.max_batch_size == 1
    chosen = _pool(fake_models, OneClipAtATime, max_batch_size=4)
    _infer(chosen, "a")
    assert chosen._slots["a"].batcher.max_batch_size == 4
    pool.close()
    chosen.close()


def _infer_in_background_lease(pool: ModelPool, model_id: str) -> None:
    with pool.use(pool.registry.get(model_id), audio_s=30.0, background=True) as lease:
        lease.decode([np.zeros(1600, dtype=np.float32)], TranscribeOptions())


def test_background_work_takes_no_interactive_place_and_starts_only_when_the_model_has_room(fake_models):
    pool = _pool(fake_models, max_inflight_per_model=1, max_batch_size=1, max_queued_per_model=1)
    assert pool.has_room("a")  # a model no request has used yet
    fake_models.gate = threading.Event()
    background = _in_background(_infer_in_background_lease, pool, "a")
    _wait_for(lambda: pool.states() and pool._slots["a"].background_leases == 1)
    assert pool.has_room("a")  # background work leaves the interactive places alone
    interactive = [_in_background(_infer, pool, "a") for _ in range(2)]  # capacity: 1 running + 1 queued
    _wait_for(lambda: pool.states()[0].leases == 2)
    assert not pool.has_room("a")  # an interactive request waits: no background work starts
    assert pool.unload("a") is False  # in use by the background lease too
    fake_models.gate.set()
    for thread in [background, *interactive]:
        thread.join(5)
    assert pool.states()[0].leases == 0 and pool._slots["a"].background_leases == 0 and pool.has_room("a")
