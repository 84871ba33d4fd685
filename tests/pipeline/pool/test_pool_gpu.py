"""The pool's GPU behaviour, on CPU: the start-up check, when torch's CUDA cache is emptied, and loads that must
fit in the GPU memory really free. A fake ``torch.cuda`` stands in for the GPU."""

from __future__ import annotations

import sys
import threading
import time
import types
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest

from core.errors import ErrorKind, ModelUnavailableError
from core.model_files import HubAccess
from core.registry import ModelRegistry, ModelSpec
from core.types import TranscribeOptions
from pipeline.pool import ModelPool, PoolLimits
from pipeline.transcriber import Transcriber
from strategies.base import RuntimeContext
from tests.fakes import GiB, FakeCuda, FakeModels, FakeASREngine

MISSING_CUBLAS = "libcublas.so.12: cannot open shared object file: No such file or directory"


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> FakeCuda:
    fake = FakeCuda()
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=fake))
    return fake


def _registry(*specs: ModelSpec) -> ModelRegistry:
    return ModelRegistry(list(specs) or [ModelSpec(id=i, engine="ctranslate2", model=i) for i in ("a", "b", "c")])


def _pool(factory, device: str = "cuda", registry: ModelRegistry | None = None, **limits) -> ModelPool:
    return ModelPool(registry or _registry(), RuntimeContext(device, HubAccess()), factory=factory,
                     limits=PoolLimits(**limits))


def _infer(pool: ModelPool, model_id: str) -> None:
    with pool.use(pool.registry.get(model_id)) as lease:
        lease.decode([np.zeros(1600, dtype=np.float32)], TranscribeOptions())


def _preload_in_background(pool: ModelPool, model_ids: list[str]) -> threading.Thread:
    """preload() keeps retrying failed models until the pool closes: run it aside and wait for its first pass."""
    thread = threading.Thread(target=pool.preload, args=(model_ids,), daemon=True)
    thread.start()
    assert pool.preloaded.wait(10)
    return thread


# ---------------------------------------------------------------------- the start-up check


class WithoutCublas(FakeASREngine):
    """Loads, then fails to run as CTranslate2 does on a GPU when cuBLAS 12 is missing from the image."""

    def transcribe_clips(self, clips, options):
        raise OSError(MISSING_CUBLAS)


def test_a_model_that_loads_but_cannot_run_keeps_the_pool_unready_and_says_why(fake_models):
    pool = _pool(fake_models.factory_for(WithoutCublas), self_check=True, load_retry_after_s=60)
    preloading = _preload_in_background(pool, ["a"])
    try:
        assert not pool.is_ready()
        reason = pool.not_ready_reason()
        assert reason is not None and "'a'" in reason and "libcublas.so.12" in reason and "cuda" in reason
        assert pool.loaded_ids() == [], "a model that cannot run does not hold GPU memory"
        with pytest.raises(ModelUnavailableError) as refused:  # requests meanwhile: 503 with the same reason
            _infer(pool, "a")
        assert refused.value.kind is ErrorKind.UNAVAILABLE and "libcublas.so.12" in refused.value.message
    finally:
        pool.close()
        preloading.join(5)


def test_a_model_that_passes_the_check_has_decoded_a_second_of_silence(fake_models):
    pool = _pool(fake_models.engine, self_check=True)
    pool.preload(["a"])
    assert pool.is_ready() and pool.not_ready_reason() is None and pool.loaded_ids() == ["a"]
    engine = pool._slots["a"].engine
    assert isinstance(engine, FakeASREngine) and engine.batches == [1]
    pool.close()


def test_an_english_only_model_is_checked_in_english(fake_models):
    fake_models.multilingual = False
    pool = _pool(fake_models.engine, self_check=True)
    pool.load("a")
    assert [options.language for options in pool._slots["a"].engine.calls] == ["en"]
    pool.close()


def test_without_the_check_a_load_decodes_nothing(fake_models):
    pool = _pool(fake_models.engine, device="cpu")
    pool.preload(["a"])
    assert pool.is_ready() and pool._slots["a"].engine.batches == []
    pool.close()


def test_until_preloading_ends_the_reason_is_that_it_has_not(fake_models):
    pool = _pool(fake_models.engine, device="cpu")
    assert pool.not_ready_reason() == "preloading models"


# ---------------------------------------------------------------------- torch's CUDA cache


def test_the_cuda_cache_is_emptied_once_when_the_last_of_two_overlapping_requests_ends(gpu: FakeCuda, fake_models):
    pool = _pool(fake_models.engine)
    pool.preload(["a", "b"])
    gpu.emptied = 0
    with ExitStack() as first:
        first.enter_context(pool.use(pool.registry.get("a")))
        with pool.use(pool.registry.get("b")) as second:
            second.decode([np.zeros(1600, dtype=np.float32)], TranscribeOptions())
        assert gpu.emptied == 0, "a request still holds a model"
    assert gpu.emptied == 1
    _infer(pool, "a")  # alone again: idle at its end
    assert gpu.emptied == 2
    pool.close()


def test_nothing_is_emptied_between_requests_while_a_long_one_runs(gpu: FakeCuda, fake_models):
    pool = _pool(fake_models.engine)
    pool.preload(["a"])
    gpu.emptied = 0
    with pool.use(pool.registry.get("a")):
        for _ in range(5):
            _infer(pool, "a")
        assert gpu.emptied == 0
    assert gpu.emptied == 1
    pool.close()


def test_through_the_transcriber_two_overlapping_requests_empty_the_cache_once(
    gpu: FakeCuda, tmp_path: Path, fake_models, wav_bytes
):
    """Each request still collects garbage at its end (release_memory); only the pool's going idle empties."""
    wav = tmp_path / "tone.wav"
    wav.write_bytes(wav_bytes(1.0))
    pool = _pool(fake_models.engine)
    pool.preload(["a"])
    transcriber = Transcriber(pool, default_model="a")
    gpu.emptied = 0
    fake_models.gate = threading.Event()
    requests = [threading.Thread(target=transcriber.transcribe, args=(wav, None, TranscribeOptions()))
                for _ in range(2)]
    for request in requests:
        request.start()
    _wait_for(lambda: pool.states()[0].leases == 2)
    fake_models.gate.set()
    for request in requests:
        request.join(10)
    assert pool.states()[0].leases == 0 and gpu.emptied == 1
    pool.close()


def _wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.01)


# ---------------------------------------------------------------------- loads fit in the GPU memory really free


class OnGpu(FakeASREngine):
    """Takes its bytes from the fake GPU while loaded."""

    gpu: FakeCuda

    def load(self) -> None:
        super().load()
        self.gpu.used += self.size_bytes

    def unload(self) -> None:
        if self.is_loaded:
            self.gpu.used -= self.size_bytes
        super().unload()


def _gpu_pool(models: FakeModels, gpu: FakeCuda, sizes: dict[str, int], **limits) -> ModelPool:
    def factory(spec, runtime):
        engine = OnGpu(spec, runtime, models)
        engine.gpu, engine.size_bytes = gpu, sizes[spec.id]
        return engine

    return _pool(factory, gpu_headroom_bytes=1 * GiB, **limits)


def test_a_load_evicts_idle_models_until_the_gpu_really_has_room(gpu: FakeCuda, fake_models):
    """The budget (none here) would take both; the GPU, with 4 GiB used by another process, cannot."""
    gpu.other_processes = 4 * GiB
    pool = _gpu_pool(fake_models, gpu, {"a": 6 * GiB, "b": 6 * GiB})
    _infer(pool, "a")
    _infer(pool, "b")  # 16 - 4 - 6 = 6 GiB free: 6 + 1 GiB of headroom does not fit
    assert pool.loaded_ids() == ["b"] and fake_models.unloads == ["a"]
    pool.close()


def test_a_load_that_cannot_fit_in_the_free_gpu_memory_is_refused_with_the_figures(gpu: FakeCuda, fake_models):
    pool = _gpu_pool(fake_models, gpu, {"a": 8 * GiB, "b": 8 * GiB})
    pool.preload(["a"])  # pinned
    with pytest.raises(ModelUnavailableError) as refused:
        _infer(pool, "b")
    message = refused.value.message
    assert refused.value.kind is ErrorKind.UNAVAILABLE and "'b'" in message
    assert "8192 MiB of GPU memory, plus 1024 MiB for activations" in message and "8192 MiB free" in message
    assert pool.loaded_ids() == ["a"] and pool.resident_bytes() == 8 * GiB, "the refused load reserved nothing"
    pool.close()


def test_the_free_memory_check_counts_loads_still_under_way(gpu: FakeCuda, fake_models):
    pool = _gpu_pool(fake_models, gpu, {"a": 10 * GiB, "b": 6 * GiB})
    loading, _ = pool._lease(pool.registry.get("a"))
    with pool._lock:
        loading.reserved_bytes = 10 * GiB  # a's load has reserved its bytes and allocated none yet
    with pytest.raises(ModelUnavailableError, match="6144 MiB free"):
        _infer(pool, "b")  # 16 GiB free, 10 of them promised to a: 6 GiB + 1 GiB of headroom does not fit
    pool.close()


def test_on_cpu_no_gpu_memory_is_asked_for(gpu: FakeCuda, fake_models):
    gpu.other_processes = gpu.total  # a full GPU that a CPU deployment must ignore
    pool = _pool(fake_models.engine, device="cpu")
    _infer(pool, "a")
    assert pool.loaded_ids() == ["a"]
    pool.close()


def test_a_ctranslate2_model_counts_its_weights_by_the_size_of_its_model_files(tiny_en_dir: Path):
    """CTranslate2 reports no memory: its model.bin's size stands for it, before the load and after."""
    registry = _registry(ModelSpec(id="tiny-en", engine="ctranslate2", model="embedded:tiny.en", language="en"))
    pool = ModelPool(registry, RuntimeContext("cpu", HubAccess(), cpu_cores=1), limits=PoolLimits())
    pool.load("tiny-en")
    assert pool.resident_bytes() == (tiny_en_dir / "model.bin").stat().st_size > 50 * 2**20
    pool.close()
