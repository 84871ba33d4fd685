from __future__ import annotations

import pytest

from core import devices


def test_release_memory_collects_and_trims_the_c_heap(monkeypatch: pytest.MonkeyPatch):
    calls: list[str] = []
    monkeypatch.setattr(devices.gc, "collect", lambda: calls.append("gc") or 0)
    monkeypatch.setattr(devices, "_malloc_trim", lambda: (lambda pad: calls.append(f"trim({pad})") or 1))
    devices.release_memory()
    assert calls == ["gc", "trim(0)"]


def test_settling_freezes_long_lived_objects_and_thaws_them_first_so_unloaded_ones_can_go():
    import gc
    import weakref

    class Weights:
        pass

    weights = Weights()
    weights.cycle = weights  # reachable only through a reference cycle once dropped
    gone = weakref.ref(weights)
    try:
        devices.release_memory(settle=True)
        assert gc.get_freeze_count() > 0
        del weights
        devices.release_memory()  # a per-request collection skips frozen objects
        assert gone() is not None
        devices.release_memory(settle=True)  # after an unload: thaw, collect, freeze again
        assert gone() is None
    finally:
        gc.unfreeze()


def test_glibc_trim_is_found_here():
    assert devices._malloc_trim() is not None


def test_memory_budget_is_bytes_or_a_fraction_of_ram():
    import psutil

    assert devices.memory_budget_bytes(3e9, "cpu") == 3_000_000_000
    assert devices.memory_budget_bytes(0.5, "cpu") == int(0.5 * psutil.virtual_memory().total)


def test_device_resolution():
    import torch

    assert devices.resolve_device("cpu") == "cpu"
    if torch.cuda.is_available():
        assert devices.resolve_device("auto") == devices.resolve_device("cuda") == "cuda"
    else:
        assert devices.resolve_device("auto") == "cpu"
        with pytest.raises(RuntimeError, match="no CUDA device"):
            devices.resolve_device("cuda")
