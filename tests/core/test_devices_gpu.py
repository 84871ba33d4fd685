"""GPU paths of core.devices, on CPU: a fake ``torch.cuda`` and a fake NVML stand in for the GPU."""

from __future__ import annotations

import sys
import types

import pytest

from core import devices
from tests.fakes import GiB, FakeCuda

@pytest.fixture
def cuda(monkeypatch: pytest.MonkeyPatch) -> FakeCuda:
    fake = FakeCuda()
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=fake))
    return fake


# ---------------------------------------------------------------------- one worker per GPU


def test_workers_take_the_visible_gpus_in_turn():
    gpus = ["0", "1", "2"]
    assert [devices.gpu_for_worker(index, gpus) for index in range(1, 8)] == ["0", "1", "2", "0", "1", "2", "0"]
    assert devices.gpu_for_worker(2, ["GPU-aaa", "GPU-bbb"]) == "GPU-bbb"


def test_a_worker_is_pinned_to_its_gpu_among_those_bentoml_shows_every_worker():
    for worker, expected in [(1, "2"), (2, "3"), (3, "2")]:
        environ = {"CUDA_VISIBLE_DEVICES": "2,3"}
        assert devices.pin_worker_to_gpu(worker, "auto", environ) == expected
        assert environ == {"CUDA_VISIBLE_DEVICES": expected, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    environ = {"CUDA_VISIBLE_DEVICES": "0,1", "CUDA_DEVICE_ORDER": "FASTEST_FIRST"}
    assert devices.pin_worker_to_gpu(2, "cuda", environ) == "1"
    assert environ["CUDA_DEVICE_ORDER"] == "FASTEST_FIRST", "an operator's order is kept"


@pytest.mark.parametrize(
    ("worker", "device", "visible"),
    [
        (2, "cpu", "0,1"),  # CPU: GPUs are not ours to hand out
        (None, "auto", "0,1"),  # not a worker: bentoml build, or the server's supervisor
        (1, "auto", "0"),  # one GPU: nothing to choose
        (1, "auto", ""),
        (1, "auto", "-1"),
    ],
)
def test_nothing_is_pinned_when_there_is_nothing_to_choose(worker, device, visible):
    environ = {"CUDA_VISIBLE_DEVICES": visible}
    assert devices.pin_worker_to_gpu(worker, device, environ) is None
    assert environ == {"CUDA_VISIBLE_DEVICES": visible}


def test_visible_gpus_read_as_cuda_reads_them():
    assert devices.visible_gpus({"CUDA_VISIBLE_DEVICES": "0, 1"}) == ["0", "1"]
    assert devices.visible_gpus({"CUDA_VISIBLE_DEVICES": "1,-1,2"}) == ["1"], "CUDA stops at an invalid entry"
    assert devices.visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []


class FakeNvml(types.ModuleType):
    class NVMLError(Exception):
        pass

    def __init__(self, memory: dict[str, tuple[int, int]]) -> None:
        super().__init__("pynvml")
        self.memory = memory
        self.initialised = 0

    def nvmlInit(self) -> None:
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        return len([key for key in self.memory if key.isdigit()])

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        return str(index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:
        if uuid not in self.memory:
            raise self.NVMLError("not found")
        return uuid

    def nvmlDeviceGetMemoryInfo(self, handle: str) -> types.SimpleNamespace:
        free, total = self.memory[handle]
        return types.SimpleNamespace(free=free, total=total, used=total - free)


def test_without_cuda_visible_devices_nvml_counts_the_gpus(monkeypatch: pytest.MonkeyPatch):
    nvml = FakeNvml({"0": (1, 2), "1": (1, 2)})
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    environ: dict[str, str] = {}
    assert devices.pin_worker_to_gpu(2, "auto", environ) == "1" and environ["CUDA_VISIBLE_DEVICES"] == "1"
    assert nvml.initialised == 0, "NVML is shut down after use"


# ---------------------------------------------------------------------- GPU memory


def test_gpu_memory_comes_from_torch_once_it_has_cuda_in_use(cuda: FakeCuda):
    cuda.used = 4 * GiB
    assert devices.cuda_memory_info() == (12 * GiB, 16 * GiB)
    assert devices.memory_budget_bytes(0.5, "cuda") == 8 * GiB


def test_without_torch_gpu_memory_comes_from_nvml_for_this_workers_gpu(monkeypatch: pytest.MonkeyPatch):
    """A CTranslate2-only deployment never imports torch: NVML answers, without a CUDA context."""
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml({"0": (1 * GiB, 8 * GiB), "1": (3 * GiB, 8 * GiB),
                                                          "GPU-b": (5 * GiB, 8 * GiB)}))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert devices.cuda_memory_info() == (3 * GiB, 8 * GiB)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-b")
    assert devices.cuda_memory_info() == (5 * GiB, 8 * GiB)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-unknown")
    assert devices.cuda_memory_info() is None
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed: unknown, and the checks that need it skip
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert devices.cuda_memory_info() is None


def test_a_request_leaves_the_cuda_cache_alone_while_memory_is_plentiful(cuda: FakeCuda):
    devices.release_memory()
    devices.release_memory()
    assert cuda.emptied == 0


def test_a_request_empties_the_cuda_cache_under_memory_pressure(cuda: FakeCuda):
    cuda.free = int(0.05 * cuda.total)  # below 10% free
    devices.release_memory()
    assert cuda.emptied == 1


def test_an_unload_always_empties_the_cuda_cache(cuda: FakeCuda):
    try:
        devices.release_memory(settle=True)
    finally:
        import gc

        gc.unfreeze()
    assert cuda.emptied == 1


def test_no_cuda_in_use_means_nothing_to_empty(monkeypatch: pytest.MonkeyPatch):
    idle = FakeCuda()
    idle.is_initialized = lambda: False  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=idle))
    devices.empty_cuda_cache()
    assert idle.emptied == 0 and not devices.cuda_memory_is_short()


# ---------------------------------------------------------------------- a missing library, named


@pytest.mark.parametrize(
    ("error", "library"),
    [
        (OSError("libcublas.so.12: cannot open shared object file: No such file or directory"), "libcublas.so.12"),
        (RuntimeError("Library libcublas.so.12 is not found or cannot be loaded"), "libcublas.so.12"),  # CTranslate2
        (OSError("libcudnn_ops.so.9: cannot open shared object file"), "libcudnn_ops.so.9"),
        (RuntimeError("CUDA error: out of memory"), None),
    ],
)
def test_the_missing_library_is_named(error: Exception, library: str | None):
    assert devices.missing_library(error) == library


def test_the_missing_library_is_found_in_the_cause():
    try:
        try:
            raise OSError("libcublasLt.so.12: cannot open shared object file: No such file or directory")
        except OSError as cause:
            raise RuntimeError("decoding failed") from cause
    except RuntimeError as error:
        assert devices.missing_library(error) == "libcublasLt.so.12"
