"""Model lifecycle through a real server: metrics, the admin API, health during long inferences."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from bench.audio_files import encode
from bench.server import metric_total, running_server
from core.audio import SAMPLE_RATE, decode_audio


def _post(http: httpx.Client, path: Path, model: str) -> httpx.Response:
    with path.open("rb") as f:
        return http.post("/transcribe", files={"file": (path.name, f)}, data={"model_id": model})


def test_metrics_count_requests_audio_errors_and_loads(http, jfk_path):
    before = http.get("/metrics").text
    assert _post(http, jfk_path, "tiny-en").status_code == 200
    assert _post(http, jfk_path, "no-such-model").status_code == 404
    after = http.get("/metrics").text
    ok = metric_total(after, "stt_requests_total", model="tiny-en", outcome="ok")
    assert ok - metric_total(before, "stt_requests_total", model="tiny-en", outcome="ok") == 1
    audio = metric_total(after, "stt_audio_seconds_total", model="tiny-en") - metric_total(before, "stt_audio_seconds_total", model="tiny-en")
    assert abs(audio - 11.0) < 0.1
    assert metric_total(after, "stt_errors_total", model="unknown", code="model_not_found") >= 1
    assert metric_total(after, "stt_model_loads_total", model="tiny-en") == 1
    assert metric_total(after, "stt_processing_seconds_count", model="tiny-en") >= 1
    assert metric_total(after, "stt_real_time_factor_count", model="tiny-en") >= 1
    assert metric_total(after, "stt_model_resident_bytes", model="tiny-en") > 10 * 2**20
    assert re.search(r"stt_model_load_seconds_bucket\{.*model=\"tiny-en\"", after)


def test_admin_loads_and_unloads_registry_models_only(http, jfk_path):
    assert http.post("/v1/admin/models/tiny-en-hf/load").json()["loaded"] is True
    listed = {m["id"]: m for m in http.get("/v1/models").json()["data"]}
    assert listed["tiny-en-hf"]["loaded"] and listed["tiny-en-hf"]["resident_bytes"] > 10 * 2**20
    assert listed["tiny-en"]["pinned"] and not listed["tiny-en-hf"]["pinned"]
    assert http.post("/v1/admin/models/tiny-en-hf/unload").json()["loaded"] is False
    assert http.post("/v1/admin/models/not-registered/load").status_code == 404
    assert http.post("/v1/admin/models/..%2F..%2Fetc/load").status_code == 404
    # It loads again on first use.
    assert _post(http, jfk_path, "tiny-en-hf").status_code == 200


def test_admin_routes_are_off_by_default(corpus_dir):
    with running_server() as plain, httpx.Client(base_url=plain.url, timeout=60) as http:
        response = http.post("/v1/admin/models/tiny-en/unload")
        assert response.status_code == 404 and response.json()["error"]["message"]
        assert http.get("/v1/models").json()["data"][0]["loaded"] is True


def test_health_and_metrics_answer_during_a_long_inference(server, long_concat):
    done = threading.Event()

    def long_request():
        with httpx.Client(base_url=server.url, timeout=300) as http:
            _post(http, long_concat.path, "tiny-en")
        done.set()

    worker = threading.Thread(target=long_request)
    worker.start()
    with httpx.Client(base_url=server.url, timeout=2) as quick:
        checks = 0
        while not done.is_set() and checks < 10:
            for route in ("/livez", "/readyz", "/metrics"):
                assert quick.get(route).status_code == 200, route
            checks += 1
    worker.join()
    assert checks >= 1


def test_one_structured_log_line_per_request_without_transcripts(server, http, jfk_path):
    import json

    marker = "ask not what your country"
    assert _post(http, jfk_path, "tiny-en").status_code == 200
    assert _post(http, jfk_path, "no-such-model").status_code == 404
    lines = [line.split("[stt.requests] ", 1)[1] for line in server.log().splitlines() if "[stt.requests] " in line]
    # The request lines; realtime sessions (from other tests on the shared server) log lines of their own.
    records = [r for r in map(json.loads, lines) if r.get("event") != "realtime_session"]
    ok = [r for r in records if r["model"] == "tiny-en" and r["status"] == 200]
    assert ok and ok[-1]["request_id"] and ok[-1]["audio_s"] == 11.0 and ok[-1]["processing_s"] > 0
    assert any(r["status"] == 404 and r["error_code"] == "model_not_found" for r in records)
    assert marker not in server.log().lower(), "transcripts stay out of the logs unless debugging"


def _eight_at_once(url: str, chosen) -> tuple[float, float, float]:
    """Eight requests sent together: (clips decoded, engine calls, calls of one clip) from the metrics."""

    def post(path: Path) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=300) as http:
            return _post(http, path, "tiny-en")

    with httpx.Client(base_url=url, timeout=30) as http:
        before = http.get("/metrics").text
        results: dict[int, httpx.Response] = {}
        threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, post(chosen[i].path))) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        after = http.get("/metrics").text
    assert sorted(results) == list(range(8)) and all(r.status_code == 200 for r in results.values())
    assert all(r.json()["text"] for r in results.values())

    def delta(name: str, **labels: str) -> float:
        return metric_total(after, name, model="tiny-en", **labels) - metric_total(before, name, model="tiny-en", **labels)

    return delta("stt_batch_size_sum"), delta("stt_batch_size_count"), delta("stt_batch_size_bucket", le="1.0")


def test_concurrent_requests_share_batches_when_the_batch_size_allows(corpus_dir, e2e_registry, english_short):
    """As on a GPU (batches of 8): eight requests sent together are decoded in fewer engine calls."""
    env = {"STT_REGISTRY_PATH": str(e2e_registry), "STT_MAX_BATCH_SIZE": "8"}
    with running_server(env) as batching:
        clips, batches, single = _eight_at_once(batching.url, english_short[:8])
    assert clips == 8
    assert batches - single >= 1 and batches < 8, f"{batches:.0f} engine calls for 8 concurrent requests"


def test_on_cpu_the_default_decodes_clip_by_clip_on_parallel_workers(server, english_short):
    """CTranslate2 on CPU: one clip per engine call (a worker's one thread gains nothing from a batch)."""
    clips, batches, single = _eight_at_once(server.url, english_short[:8])
    assert clips == 8 and batches == 8 and single == 8


def test_a_diarizer_under_a_tight_memory_budget_is_evicted_like_any_model(corpus_dir, jfk_path):
    """Room for the (unpinned) default model or the diarizer, never both: each evicts the other when idle."""
    from core.model_files import estimate_weight_bytes, HubAccess

    tiny_en_bytes = estimate_weight_bytes("embedded:tiny.en", None, HubAccess())
    env = {"STT_CPU_MEMORY_BUDGET": str(tiny_en_bytes + 2**20), "STT_PIN_PRELOADED": "false"}
    call = corpus_dir / "multi/pyannote_sample.wav"
    with running_server(env) as tight, httpx.Client(base_url=tight.url, timeout=300) as http:
        with call.open("rb") as f:
            diarized = http.post("/transcribe", files={"file": ("call.wav", f)}, data={"diarize": "true"})
        assert diarized.status_code == 200 and {s["speaker"] for s in diarized.json()["segments"]} - {None}
        models = {m["id"]: m for m in http.get("/v1/models").json()["data"]}
        diarizer = models["embedded-diarizer"]
        assert diarizer["kind"] == "diarization" and diarizer["engine"] == "embedded_diarizer"
        assert diarizer["loaded"] and diarizer["resident_bytes"] > 2**20 and not models["tiny-en"]["loaded"]
        assert _post(http, jfk_path, "tiny-en").status_code == 200
        models = {m["id"]: m for m in http.get("/v1/models").json()["data"]}
        assert models["tiny-en"]["loaded"] and not models["embedded-diarizer"]["loaded"]
        metrics = http.get("/metrics").text
    assert metric_total(metrics, "stt_model_unloads_total", model="embedded-diarizer", reason="evicted") == 1
    assert metric_total(metrics, "stt_model_unloads_total", model="tiny-en", reason="evicted") == 1


def test_a_replica_whose_default_model_failed_to_load_is_not_ready(corpus_dir, jfk_path):
    """freds0 is registered but its weights are not in the (empty) Hugging Face cache."""
    with running_server({"STT_DEFAULT_MODEL": "freds0"}, wait_for="/livez") as broken, \
            httpx.Client(base_url=broken.url, timeout=300) as http:
        deadline = time.monotonic() + 120
        while "preloading freds0 failed" not in broken.log():
            assert time.monotonic() < deadline, broken.log()[-2000:]
            time.sleep(0.5)
        assert http.get("/readyz").status_code == 503
        assert http.get("/livez").status_code == 200
        assert _post(http, jfk_path, "tiny-en").status_code == 200, "it still serves the models it has"
        assert http.get("/readyz").status_code == 503


def test_a_stream_the_client_closes_is_logged_and_counted(server, long_concat):
    import json

    with httpx.Client(base_url=server.url, timeout=300) as http:
        before = http.get("/metrics").text
        with long_concat.path.open("rb") as f, http.stream(
            "POST", "/v1/audio/transcriptions", files={"file": ("long.flac", f)}, data={"stream": "true"}
        ) as response:
            assert response.status_code == 200
            first = next(line for line in response.iter_lines() if line.startswith("data:"))
            assert json.loads(first.removeprefix("data:"))["type"] == "transcript.text.delta"
        # Leaving the block closed the connection before the last segment.
        deadline = time.monotonic() + 60
        while True:
            records = [json.loads(line.split("[stt.requests] ", 1)[1])
                       for line in server.log().splitlines() if "[stt.requests] " in line]
            records = [r for r in records if r.get("event") != "realtime_session"]
            if any(r["status"] == 499 and r["error_code"] == "client_closed_request" for r in records):
                break
            assert time.monotonic() < deadline, "no log line for the abandoned stream"
            time.sleep(0.5)
        after = http.get("/metrics").text
    closed = metric_total(after, "stt_errors_total", model="tiny-en", code="client_closed_request")
    assert closed - metric_total(before, "stt_errors_total", model="tiny-en", code="client_closed_request") == 1


@pytest.mark.parametrize("route", ["/v1/audio/transcriptions", "/transcribe"])
def test_a_client_that_hangs_up_stops_the_work_on_its_file(server, long_concat, route):
    def clips_decoded(http: httpx.Client) -> float:
        return metric_total(http.get("/metrics").text, "stt_batch_size_sum", model="tiny-en")

    with httpx.Client(base_url=server.url, timeout=300) as http:
        before = clips_decoded(http)
        assert _post(http, long_concat.path, "tiny-en").status_code == 200
        whole_file = clips_decoded(http) - before
        before = clips_decoded(http)
        closed_before = server.log().count("client_closed_request")
        with httpx.Client(base_url=server.url, timeout=1.0) as impatient, long_concat.path.open("rb") as f:
            try:
                impatient.post(route, files={"file": ("long.flac", f)})
            except httpx.TimeoutException:
                pass  # the client gives up and closes the connection
        deadline = time.monotonic() + 60
        while server.log().count("client_closed_request") == closed_before:
            assert time.monotonic() < deadline, "the abandoned request was never noticed"
            time.sleep(0.5)
        time.sleep(2)
        abandoned = clips_decoded(http) - before
    assert abandoned < whole_file, f"{abandoned} of the file's {whole_file} clips were decoded for nobody"


def test_a_request_past_its_deadline_gets_an_openai_504_and_stops(server, long_concat, tmp_path):
    """Two requests cut at 2 s decode fewer clips together than one whole file: the work stops at the deadline."""
    longer = encode(np.tile(decode_audio(long_concat.path), 3), SAMPLE_RATE, tmp_path / "long.flac", "flac")  # 311 s

    def clips_decoded(http: httpx.Client) -> float:
        return metric_total(http.get("/metrics").text, "stt_batch_size_sum", model="tiny-en")

    with httpx.Client(base_url=server.url, timeout=300) as http:
        before = clips_decoded(http)
        assert _post(http, longer, "tiny-en").status_code == 200
        whole_file = clips_decoded(http) - before
    with running_server({"STT_REQUEST_TIMEOUT_S": "2"}) as hurried, httpx.Client(base_url=hurried.url, timeout=120) as http:
        for route in ("/v1/audio/transcriptions", "/transcribe"):
            with longer.open("rb") as f:
                response = http.post(route, files={"file": ("long.flac", f)})
            assert response.status_code == 504, response.text
            error = response.json()["error"]
            assert error["type"] == "server_error" and error["code"] == "timeout" and "2 seconds" in error["message"]
        time.sleep(2)  # clips already running when the deadline passed finish; nothing after them
        clips = clips_decoded(http)
    assert clips < whole_file, f"{clips} clips decoded for two requests cut at 2 s; a whole file takes {whole_file}"
