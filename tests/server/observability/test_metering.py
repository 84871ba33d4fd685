"""Per-request accounting: one outcome per request (success, failure with the status the client saw, or a client
that left), recorded as Prometheus counters and one log line; no model involved."""

from __future__ import annotations

import pytest

from core.errors import ModelNotFoundError, RequestTimedOut, UnsupportedAudioError
from core.registry import ModelRegistry, ModelSpec
from server.observability import metering
from server.edge.errors import OPENAI_AUDIO_STATUSES
from server.observability.metering import RequestMeter, metered


@pytest.fixture
def recorded(monkeypatch) -> list[tuple]:
    """What the meter hands to the metrics and the request log, in order."""
    calls: list[tuple] = []

    class Metrics:
        @staticmethod
        def record_success(model, audio_seconds, processing_seconds):
            calls.append(("success", model, audio_seconds, processing_seconds))

        @staticmethod
        def record_error(model, code):
            calls.append(("error", model, code))

    monkeypatch.setattr(metering, "metrics", Metrics)
    monkeypatch.setattr(metering, "log_request", lambda **fields: calls.append(("log", fields)))
    return calls


def logged(recorded: list[tuple]) -> list[tuple[int, str | None]]:
    """The status and error code of each log line."""
    return [(call[1]["status"], call[1].get("error_code")) for call in recorded if call[0] == "log"]


@pytest.fixture
def registry() -> ModelRegistry:
    return ModelRegistry([ModelSpec(id="asr", engine="ctranslate2", model="x")])


def test_a_success_is_counted_and_logged_with_the_transcript_only_when_the_operator_asks(recorded):
    RequestMeter("asr", log_transcripts=False).succeeded(11.0, 0.5, "hello")
    RequestMeter("asr", log_transcripts=True).succeeded(2.0, 0.25, "hello")
    assert recorded == [
        ("success", "asr", 11.0, 0.5),
        ("log", {"model": "asr", "status": 200, "audio_s": 11.0, "processing_s": 0.5, "text": None}),
        ("success", "asr", 2.0, 0.25),
        ("log", {"model": "asr", "status": 200, "audio_s": 2.0, "processing_s": 0.25, "text": "hello"}),
    ]


def test_a_domain_error_is_counted_with_the_routes_own_status(recorded):
    RequestMeter("asr", False).failed_with(UnsupportedAudioError("no", input="file"))
    RequestMeter("asr", False, OPENAI_AUDIO_STATUSES).failed_with(UnsupportedAudioError("no", input="file"))
    RequestMeter("asr", False, OPENAI_AUDIO_STATUSES).failed_with(RequestTimedOut("late", input="file"))
    assert logged(recorded) == [(415, "unsupported_audio"), (400, "unsupported_audio"), (504, "timeout")]
    assert [call for call in recorded if call[0] == "error"] == [
        ("error", "asr", "unsupported_audio"), ("error", "asr", "unsupported_audio"), ("error", "asr", "timeout")
    ]


def test_a_client_that_leaves_before_the_end_is_499_and_only_then(recorded):
    left = RequestMeter("asr", False)
    left.abandoned()
    done = RequestMeter("asr", False)
    done.succeeded(1.0, 0.1)
    done.abandoned()
    failed = RequestMeter("asr", False)
    failed.failed(503, "model_unavailable")
    failed.abandoned()
    assert logged(recorded) == [(499, "client_closed_request"), (200, None), (503, "model_unavailable")]


def test_metered_counts_an_escaping_error_once_with_the_routes_statuses_and_reraises(recorded, registry):
    with pytest.raises(UnsupportedAudioError):
        with metered(registry, "asr", False, OPENAI_AUDIO_STATUSES):
            raise UnsupportedAudioError("no", input="file")
    with pytest.raises(ZeroDivisionError):
        with metered(registry, "asr", False):
            raise ZeroDivisionError
    assert logged(recorded) == [(400, "unsupported_audio"), (500, "internal_error")]


def test_metered_names_a_model_not_in_the_registry_unknown(recorded, registry):
    """Clients choose the name: only the registry's ids become metric labels."""
    with pytest.raises(ModelNotFoundError):
        with metered(registry, "../../etc/passwd", False) as meter:
            assert meter.model == "unknown"
            raise ModelNotFoundError("no such model", input="model")
    assert recorded[0] == ("error", "unknown", "model_not_found")
    with metered(registry, "asr", False) as meter:
        assert meter.model == "asr" and meter.statuses == {}
