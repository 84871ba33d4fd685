from __future__ import annotations

import threading

import pytest

from stt.errors import ModelNotFoundError, ModelUnavailableError
from stt.model_files import HubAccess
from stt.model_pool import ModelPool
from stt.registry import ModelRegistry, ModelSpec
from strategies.base import RuntimeContext
from tests.fakes import FakeStrategy


@pytest.fixture(autouse=True)
def _reset_fake():
    FakeStrategy.loads = []
    FakeStrategy.fail_with = None
    FakeStrategy.load_seconds = 0.0
    yield


def _pool(retry_s: float = 30.0) -> ModelPool:
    registry = ModelRegistry(
        [ModelSpec(id="a", engine="ctranslate2", model="x"), ModelSpec(id="b", engine="ctranslate2", model="y")]
    )
    return ModelPool(registry, RuntimeContext("cpu", HubAccess()), factory=FakeStrategy, load_retry_after_s=retry_s)


def test_preload_loads_and_marks_ready():
    pool = _pool()
    assert not pool.preloaded.is_set()
    pool.preload(["a"])
    assert pool.preloaded.is_set() and pool.loaded_ids() == ["a"] and FakeStrategy.loads == ["a"]


def test_models_stay_loaded_across_requests():
    pool = _pool()
    for model_id in ["a", "b", "a", "b", "a"]:
        with pool.use(model_id) as strategy:
            assert strategy.spec.id == model_id
    assert FakeStrategy.loads == ["a", "b"]


def test_concurrent_first_requests_load_once():
    FakeStrategy.load_seconds = 0.2
    pool = _pool()
    barrier = threading.Barrier(6)

    def request():
        barrier.wait()
        with pool.use("a"):
            pass

    threads = [threading.Thread(target=request) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert FakeStrategy.loads == ["a"]


def test_unknown_model_is_404():
    with pytest.raises(ModelNotFoundError):
        with _pool().use("nope"):
            pass


def test_failed_load_is_503_fails_fast_then_retries_later():
    pool = _pool(retry_s=60)
    FakeStrategy.fail_with = OSError("We couldn't connect to 'https://huggingface.co' ... cached files.")
    with pytest.raises(ModelUnavailableError) as info:
        with pool.use("a"):
            pass
    assert info.value.status == 503 and "not in the Hugging Face cache" in info.value.message
    with pytest.raises(ModelUnavailableError):
        with pool.use("a"):
            pass
    assert FakeStrategy.loads == ["a"], "a second request within the retry window must not retry the load"
    # Other models keep working.
    FakeStrategy.fail_with = None
    with pool.use("b"):
        pass
    # After the window, the load is tried again.
    pool.load_retry_after_s = 0
    with pool.use("a"):
        pass
    assert FakeStrategy.loads == ["a", "b", "a"]


def test_preload_failure_still_marks_ready():
    FakeStrategy.fail_with = RuntimeError("boom")
    pool = _pool()
    pool.preload(["a"])
    assert pool.preloaded.is_set() and pool.loaded_ids() == []


def test_unload_releases_memory(monkeypatch: pytest.MonkeyPatch):
    released = []
    monkeypatch.setattr("stt.model_pool.release_memory", lambda: released.append(True))
    pool = _pool()
    pool.preload(["a", "b"])
    pool.unload("a")
    assert pool.loaded_ids() == ["b"] and released
