import json
import logging

from server.observability.request_log import log_request


def test_log_line_is_json_with_the_request_fields(caplog):
    with caplog.at_level(logging.INFO, logger="stt.requests"):
        log_request(model="tiny-en", status=200, audio_s=11.0004, processing_s=0.51234)
        log_request(model="unknown", status=404, error_code="model_not_found")
        log_request(model="tiny-en", status=200, audio_s=1, processing_s=1, text="debug only")
    ok, missing, debug = (json.loads(r.getMessage()) for r in caplog.records)
    assert ok == {"event": "transcription", "request_id": None, "model": "tiny-en", "status": 200,
                  "audio_s": 11.0, "processing_s": 0.512}
    assert missing["error_code"] == "model_not_found" and "text" not in missing
    assert debug["text"] == "debug only"


def test_a_live_session_ends_with_one_json_line(caplog):
    from server.observability.request_log import log_live_session

    with caplog.at_level(logging.INFO, logger="stt.requests"):
        log_live_session(model="tiny-en", outcome="closed", audio_s=61.00049, turns=7, session_s=65.2)
        log_live_session(model="tiny-en", outcome="refused", audio_s=0, turns=0, session_s=0.001,
                         error_code="session_limit_reached")
    closed, refused = (json.loads(r.getMessage()) for r in caplog.records)
    assert closed == {"event": "realtime_session", "model": "tiny-en", "outcome": "closed", "audio_s": 61.0,
                      "turns": 7, "session_s": 65.2}
    assert refused["error_code"] == "session_limit_reached"
