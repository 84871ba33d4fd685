from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from server.wiring import (
    build_chat, build_jobs_from_settings, build_live_transcriber, build_transcriber, build_webhook_sender,
    models_to_preload,
)
from core.errors import ModelNotFoundError
from server.settings import Settings


def test_builds_from_settings_without_loading_anything(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STT_DEVICE", "cpu")
    monkeypatch.setenv("STT_CPU_MEMORY_BUDGET", str(3 * 2**30))
    monkeypatch.setenv("STT_MAX_QUEUED_PER_MODEL", "5")
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    transcriber = build_transcriber(Settings())
    pool = transcriber.pool
    assert pool.loaded_ids() == [] and not pool.preloaded.is_set()
    assert pool.runtime.device == "cpu" and pool.runtime.hub.token == "hf_x"
    assert pool.limits.memory_budget_bytes == 3 * 2**30 and pool.limits.max_queued_per_model == 5
    assert models_to_preload(transcriber) == ["tiny-en"]


def test_files_chat_and_live_sessions_share_one_audio_memory_budget(monkeypatch: pytest.MonkeyPatch, caplog):
    monkeypatch.setenv("STT_DEVICE", "cpu")
    settings = Settings()
    transcriber = build_transcriber(settings)
    assert transcriber.audio_budget.limit_bytes == 1024 * 2**20
    live, _ = build_live_transcriber(transcriber, settings)
    chat, _ = build_chat(transcriber, settings)
    assert live.audio_budget is transcriber.audio_budget and chat.transcriber is transcriber
    assert "STT_AUDIO_MEMORY_BUDGET_MB" not in caplog.text
    monkeypatch.setenv("STT_AUDIO_MEMORY_BUDGET_MB", "100")  # 27 minutes, under the 4 hours accepted
    assert build_transcriber(Settings()).audio_budget.limit_bytes == 100 * 2**20
    assert "STT_AUDIO_MEMORY_BUDGET_MB=100 holds 1638 s of audio" in caplog.text


def test_fraction_budget_is_a_share_of_ram(monkeypatch: pytest.MonkeyPatch):
    import psutil

    monkeypatch.setenv("STT_DEVICE", "cpu")
    monkeypatch.setenv("STT_CPU_MEMORY_BUDGET", "0.25")
    budget = build_transcriber(Settings()).pool.limits.memory_budget_bytes
    assert budget == int(0.25 * psutil.virtual_memory().total)


def test_an_unregistered_default_model_fails_at_startup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("STT_DEFAULT_MODEL", "missing")
    with pytest.raises(ModelNotFoundError):
        build_transcriber(Settings())


def test_the_configured_diarizer_is_a_registry_model(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STT_DEVICE", "cpu")
    transcriber = build_transcriber(Settings())
    spec = transcriber.registry.get(transcriber.diarizer_id)
    assert (spec.id, spec.kind, spec.engine) == ("embedded-diarizer", "diarization", "embedded_diarizer")
    assert spec.id not in models_to_preload(transcriber), "diarizers load on first use"
    monkeypatch.setenv("STT_DIARIZATION_ENGINE", "pyannote")
    monkeypatch.setenv("STT_PYANNOTE_MODEL", "org/pipeline")
    pyannote = build_transcriber(Settings())
    assert pyannote.registry.get(pyannote.diarizer_id).model == "org/pipeline"
    monkeypatch.setenv("STT_DIARIZATION_ENGINE", "none")
    off = build_transcriber(Settings())
    assert off.diarizer_id is None and off.registry.ids("diarization") == []


def test_on_cpu_a_request_queues_one_clip_per_engine_worker_unless_configured(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STT_DEVICE", "cpu")
    assert build_transcriber(Settings()).pool.limits.max_clips_per_request is None  # the pool's: one per worker
    monkeypatch.setenv("STT_MAX_CLIPS_PER_REQUEST", "4")
    assert build_transcriber(Settings()).pool.limits.max_clips_per_request == 4


def test_a_ctranslate2_only_service_never_imports_torch(jfk_path):
    """torch's OpenMP runtime would compete with CTranslate2's for the cores; the service sets passive waiting."""
    import subprocess
    import sys

    from server.settings import PROJECT_ROOT

    script = f"""
import os, sys
os.environ.pop("OMP_WAIT_POLICY", None)
import service
from core.types import TranscribeOptions
from server.wiring import build_transcriber
transcriber = build_transcriber(service.settings)
transcriber.pool.preload(["tiny-en"])
result = transcriber.transcribe({str(jfk_path)!r}, None, TranscribeOptions())
assert "country" in result.transcription.text.lower(), result
assert "torch" not in sys.modules, "torch was imported"
assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
transcriber.pool.close()
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | {"HF_HUB_OFFLINE": "1", "STT_DEVICE": "auto"}
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_the_realtime_settings_reach_the_live_transcriber_and_the_route(monkeypatch: pytest.MonkeyPatch):
    from server.wiring import build_live_transcriber

    monkeypatch.setenv("STT_DEVICE", "cpu")
    monkeypatch.setenv("STT_REALTIME_MAX_SESSIONS", "7")
    monkeypatch.setenv("STT_REALTIME_MAX_SESSIONS_PER_KEY", "3")
    monkeypatch.setenv("STT_REALTIME_MAX_SEND_QUEUE_MB", "0.5")
    monkeypatch.setenv("STT_REALTIME_MAX_AUDIO_SPEED", "2.5")
    monkeypatch.setenv("STT_REALTIME_AUDIO_BURST_S", "12")
    monkeypatch.setenv("STT_REALTIME_ALLOWED_ORIGINS", "https://app.example.com,http://intranet:8080")
    live, realtime = build_live_transcriber(build_transcriber(Settings()), Settings())
    assert (live.sessions.max_sessions, live.sessions.max_per_client) == (7, 3)
    assert (live.limits.max_audio_speed, live.limits.audio_burst_s) == (2.5, 12.0)
    assert realtime.max_send_queue_bytes == 2**19
    assert realtime.allowed_origins == ("https://app.example.com", "http://intranet:8080")


def test_the_wait_bound_and_the_chat_audio_limits_come_from_the_settings(monkeypatch: pytest.MonkeyPatch):
    from server.wiring import build_chat

    monkeypatch.setenv("STT_DEVICE", "cpu")
    monkeypatch.setenv("STT_MAX_AUDIO_DURATION_S", "600")
    transcriber = build_transcriber(Settings())
    assert transcriber.pool.limits.max_estimated_wait_s == 60.0
    chat, _ = build_chat(transcriber, Settings())
    assert (chat.limits.max_audio_parts, chat.limits.max_audio_s) == (16, 600.0)  # the uploads' limit by default
    monkeypatch.setenv("STT_MAX_QUEUE_WAIT_S", "0")
    monkeypatch.setenv("STT_CHAT_MAX_AUDIO_PARTS", "4")
    monkeypatch.setenv("STT_CHAT_MAX_AUDIO_S", "120")
    transcriber = build_transcriber(Settings())
    assert transcriber.pool.limits.max_estimated_wait_s is None  # 0: no bound
    chat, _ = build_chat(transcriber, Settings())
    assert (chat.limits.max_audio_parts, chat.limits.max_audio_s) == (4, 120.0)


def test_the_jobs_come_from_the_settings_and_are_off_without_a_directory(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path):
    monkeypatch.setenv("STT_DEVICE", "cpu")
    transcriber = build_transcriber(Settings())
    assert build_jobs_from_settings(transcriber, Settings()) is None
    for name, value in {"STT_JOBS_DIR": str(tmp_path / "jobs"), "STT_JOBS_WORKERS": "3", "STT_JOBS_LEASE_S": "7",
                        "STT_JOBS_MAX_BATCH_LINES": "9", "STT_JOBS_MAX_FILES": "11", "STT_MAX_UPLOAD_BYTES": "1000",
                        "STT_JOBS_URL_TIMEOUT_S": "4", "STT_FETCH_ALLOWED_HOSTS": "media.example, 10.0.0.0/8"}.items():
        monkeypatch.setenv(name, value)
    jobs = build_jobs_from_settings(transcriber, Settings())
    assert jobs is not None and (tmp_path / "jobs" / "jobs.sqlite").exists()
    assert jobs.worker.settings.workers == 3 and jobs.batches.limits.lease_s == 7
    assert jobs.batches.limits.retention_s == 30 * 86400
    assert jobs.batches.limits.max_lines == 9 and jobs.files.limits.max_files == 11
    assert jobs.files.limits.max_bytes == 1000 and jobs.worker.runner.settings.url_timeout_s == 4
    allowed = jobs.worker.runner.settings.allowed_hosts
    assert allowed.names == {"media.example"} and [str(n) for n in allowed.networks] == ["10.0.0.0/8"]
    monkeypatch.setenv("STT_WEBHOOK_URLS", "http://127.0.0.1:9/a, http://127.0.0.1:9/b")
    with pytest.raises(ValueError, match="STT_WEBHOOK_SECRET"):
        build_webhook_sender(Settings())
    monkeypatch.setenv("STT_WEBHOOK_SECRET", "whsec_c2VjcmV0")
    sender = build_webhook_sender(Settings())
    assert sender is not None and sender.settings.urls == ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")
    sender.close()


def test_a_batch_that_ends_is_told_to_the_webhooks_with_its_own_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("STT_DEVICE", "cpu")
    monkeypatch.setenv("STT_JOBS_DIR", str(tmp_path / "jobs"))
    told: list[tuple[str, str, str | None]] = []

    class Webhooks:
        def batch_ended(self, batch_id: str, status: str, batch_url: str | None = None) -> None:
            told.append((batch_id, status, batch_url))

    webhooks = Webhooks()
    transcriber = build_transcriber(Settings())
    jobs = build_jobs_from_settings(transcriber, Settings(), webhooks=webhooks)  # type: ignore[arg-type]
    assert jobs is not None
    line = {"custom_id": "a", "method": "POST", "url": "/v1/audio/transcriptions", "body": {"file": "file-x"}}
    batch_input = jobs.files.create(io.BytesIO(json.dumps(line).encode() + b"\n"), "in.jsonl", "batch")
    own = jobs.batches.create(batch_input.id, "/v1/audio/transcriptions", "24h", {"webhook_url": "http://h.test/x"})
    plain = jobs.batches.create(batch_input.id, "/v1/audio/transcriptions", "24h")
    for batch in (own, plain):
        jobs.batches.cancel(batch.id)
    for _ in range(20):
        if not jobs.worker.step():
            break
    assert sorted(told) == sorted([(own.id, "cancelled", "http://h.test/x"), (plain.id, "cancelled", None)])
