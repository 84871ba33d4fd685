"""What the settings turn on for a GPU in the transcriber's factory: the start-up check and the load headroom (the
device faked as cuda)."""

from __future__ import annotations

import pytest

from pipeline import factory
from server.settings import Settings


@pytest.fixture
def on_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(factory, "resolve_device", lambda requested: "cuda")
    monkeypatch.setattr(factory, "memory_budget_bytes", lambda budget, device: 16 * 2**30)


def test_on_gpu_every_load_is_checked_by_default(on_gpu: None):
    limits = factory.build_transcriber(Settings()).pool.limits
    assert limits.self_check and limits.gpu_headroom_bytes == 2**30


def test_on_cpu_loads_are_not_checked_by_default(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STT_DEVICE", "cpu")
    assert not factory.build_transcriber(Settings()).pool.limits.self_check


@pytest.mark.parametrize(("setting", "device", "checked"), [("on", "cpu", True), ("off", "cuda", False),
                                                           ("auto", "cuda", True), ("auto", "cpu", False)])
def test_the_check_can_be_forced_either_way(setting: str, device: str, checked: bool):
    assert factory.self_check_enabled(Settings(model_self_check=setting), device) is checked


def test_the_load_headroom_is_set_in_mib(on_gpu: None, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STT_GPU_LOAD_HEADROOM_MB", "512")
    assert factory.build_transcriber(Settings()).pool.limits.gpu_headroom_bytes == 512 * 2**20
