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
