"""Memory abuse: small files that decode to gigabytes. Eight 0.7 MB FLACs of 3 h 50 min at a constant -40 dBFS,
sent at once, while a normal request (the JFK clip) is timed against its time alone."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import httpx

from bench.audio_files import encode_silence

from .case import Case, Outcome, Target

SAMPLE_RATE = 16_000
LONG_S = 3 * 3600 + 50 * 60
MINUS_40_DBFS = 328
"""The 16-bit sample value of -40 dBFS: 32768 * 10 ** (-40 / 20)."""
JFK = "en/jfk_inaugural_1961_excerpt.flac"
ROUTE = "/v1/audio/transcriptions"
SOLO_RUNS = 3
CLIENT_TIMEOUT_S = 600


def constant_flac(work_dir: Path) -> Path:
    """The 3 h 50 min constant -40 dBFS FLAC (about 2.6 MB: 4096-sample frames), written once into ``work_dir``."""
    path = work_dir / "constant-40dBFS-3h50.flac"
    if not path.exists():
        encode_silence(path, SAMPLE_RATE, SAMPLE_RATE * LONG_S, "flac", level=MINUS_40_DBFS)
    return path


def _post(client: httpx.Client, name: str, data: bytes) -> httpx.Response:
    return client.post(ROUTE, files={"file": (name, data, "audio/flac")}, data={"model": "whisper-1"})


def _timed(client: httpx.Client, name: str, data: bytes) -> tuple[float, httpx.Response]:
    started = time.monotonic()
    response = _post(client, name, data)
    return time.monotonic() - started, response


def constant_flacs(count: int):
    """A case: ``count`` constant FLACs at once, the JFK clip sent a second after them."""

    def run(target: Target) -> Outcome:
        flac = constant_flac(target.work_dir).read_bytes()
        jfk = (target.corpus_dir / JFK).read_bytes()
        outcome = Outcome()
        with httpx.Client(base_url=target.url, headers=target.headers, timeout=CLIENT_TIMEOUT_S) as client:
            solo = [_timed(client, "jfk.flac", jfk)[0] for _ in range(SOLO_RUNS)]
            responses: list[httpx.Response | Exception] = []

            def send() -> None:
                try:
                    responses.append(_post(client, "constant.flac", flac))
                except httpx.HTTPError as error:
                    responses.append(error)

            threads = [threading.Thread(target=send) for _ in range(count)]
            for thread in threads:
                thread.start()
            time.sleep(1.0)  # the long ones are decoding or waiting for the budget
            meanwhile, normal = _timed(client, "jfk.flac", jfk)
            flood_running = sum(thread.is_alive() for thread in threads)
            for thread in threads:
                thread.join()
        problems = []
        for response in responses:
            if isinstance(response, Exception):
                outcome.statuses.append(type(response).__name__)
                continue
            outcome.statuses.append(str(response.status_code))
            if response.status_code in (429, 503) and "retry-after" not in response.headers:
                problems.append(f"{response.status_code} without Retry-After")
            elif response.status_code == 200 and response.json().get("text", "").strip():
                problems.append(f"text {response.json()['text'][:40]!r}")
            elif response.status_code not in (200, 429, 503):
                problems.append(f"{response.status_code} {response.text[:80]}")
        median = statistics.median(solo)
        outcome.notes = (
            f"JFK {normal.status_code} in {meanwhile:.1f} s meanwhile ({flood_running} of {count} still running), "
            f"solo min/median/max {min(solo):.1f}/{median:.1f}/{max(solo):.1f} s: {meanwhile / median:.1f}x"
            + (f"; {'; '.join(problems)}" if problems else "")
        )
        return outcome

    return run


TARGET = "peak <= 1.5 GB above idle; 200 empty or 429/503 with Retry-After; JFK <= 3x solo"
CASES = [
    Case("constant-flacs-x8", constant_flacs(8), TARGET),
    Case("constant-flacs-x2", constant_flacs(2), "the same with two (safe to run on the code before the budget)"),
]
