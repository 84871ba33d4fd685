from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import Settings


def test_defaults_serve_the_embedded_model(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    settings = Settings()
    assert settings.default_model == "tiny-en"
    assert settings.registry_path.name == "models.yaml" and settings.registry_path.is_file()
    assert settings.device == "auto" and settings.hf_token_value is None


def test_environment_with_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("STT_DEFAULT_MODEL", "freds0")
    monkeypatch.setenv("STT_DEVICE", "cpu")
    monkeypatch.setenv("STT_REGISTRY_PATH", str(tmp_path / "r.yaml"))
    monkeypatch.setenv("STT_HF_CACHE_DIR", str(tmp_path))
    settings = Settings()
    assert (settings.default_model, settings.device) == ("freds0", "cpu")
    assert settings.registry_path == tmp_path / "r.yaml" and settings.hf_cache_dir == tmp_path


def test_hf_token_is_read_from_HF_TOKEN_and_never_printed(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    settings = Settings()
    assert settings.hf_token_value == "hf_secret_value"
    assert "hf_secret_value" not in repr(settings) and "hf_secret_value" not in str(settings.model_dump())


def test_invalid_device_is_rejected(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STT_DEVICE", "tpu")
    with pytest.raises(ValueError):
        Settings()


def test_the_audio_memory_budget_is_a_gibibyte_unless_set(monkeypatch: pytest.MonkeyPatch):
    assert Settings().audio_memory_budget_mb == 1024
    monkeypatch.setenv("STT_AUDIO_MEMORY_BUDGET_MB", "2048")
    assert Settings().audio_memory_budget_mb == 2048
    monkeypatch.setenv("STT_AUDIO_MEMORY_BUDGET_MB", "0")
    with pytest.raises(ValueError):
        Settings()
