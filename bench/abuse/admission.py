"""Admission cases: many long files at once and a short request behind them; a chat request with a thousand audio
parts. Each says what the server answered, how long the short request took against its solo time in the same run,
and whether every 429 and 503 carried ``Retry-After``.

The long files are built from the corpus (utterances back to back) into the target's work folder."""

from __future__ import annotations

import base64
import io
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from bench.corpus import Utterance, assemble, english_short_utterances

from .case import Case, Outcome, Target

LONG_FILES = 30
LONG_FILE_S = 300.0
SHORT_AFTER_S = 5.0
"""The short request is sent this long after the long files: they are all in the server by then."""
SOLO_RUNS = 3
CLIP_S = 30.0
"""One clip: what a worker may be decoding for a long file when the short request's clip arrives."""
CHAT_PARTS = 1000
CHAT_PART_S = 0.5
TRANSCRIPTIONS = "/v1/audio/transcriptions"


@dataclass(frozen=True)
class Answer:
    status: int
    seconds: float
    retry_after: str | None


def short_utterance(target: Target) -> Utterance:
    utterances = english_short_utterances(target.corpus_dir)
    if not utterances:
        raise RuntimeError(f"no corpus at {target.corpus_dir}")
    return min(utterances, key=lambda u: abs(u.duration_s - 3.0))


def long_file(target: Target, seconds: float = LONG_FILE_S) -> Path:
    """Corpus utterances back to back until ``seconds``, as FLAC in the work folder (built once)."""
    from bench.audio_files import encode
    from core.audio import SAMPLE_RATE

    path = target.work_dir / f"long-{seconds:.0f}s.flac"
    if not path.exists():
        samples, _ = assemble(english_short_utterances(target.corpus_dir), seconds)
        encode(samples[: int(seconds * SAMPLE_RATE)], SAMPLE_RATE, path, "flac")
    return path


def transcribe(http: httpx.Client, path: Path) -> Answer:
    started = time.perf_counter()
    with path.open("rb") as f:
        response = http.post(TRANSCRIPTIONS, files={"file": (path.name, f)}, data={"model": "whisper-1"})
    return Answer(response.status_code, time.perf_counter() - started, response.headers.get("retry-after"))


def without_retry_after(answers: list[Answer]) -> int:
    return sum(1 for a in answers if a.status in (429, 503) and a.retry_after is None)


@dataclass(frozen=True)
class BehindLongFiles:
    solo_s: float
    """The short request alone (median of ``SOLO_RUNS``, after a warm-up)."""
    clip_s: float
    """A ``CLIP_S`` file alone (median of ``SOLO_RUNS``): one clip of a long file."""
    long_answers: list[Answer]
    short_answer: Answer
    """The short request sent behind the long files."""


def send_long_files_and_a_short_request(
    target: Target, files: int = LONG_FILES, file_s: float = LONG_FILE_S, short_after_s: float = SHORT_AFTER_S
) -> BehindLongFiles:
    """The short request alone, then ``files`` long files sent at once and the short request ``short_after_s``
    later."""
    short = short_utterance(target).path
    long_path, clip_path = long_file(target, file_s), long_file(target, CLIP_S)
    limits = httpx.Limits(max_connections=files + 2)
    with httpx.Client(base_url=target.url, headers=target.headers, timeout=3600, limits=limits) as http:
        transcribe(http, short)  # warm-up
        solo = statistics.median(transcribe(http, short).seconds for _ in range(SOLO_RUNS))
        clip = statistics.median(transcribe(http, clip_path).seconds for _ in range(SOLO_RUNS))
        with ThreadPoolExecutor(files) as pool:
            longs = [pool.submit(transcribe, http, long_path) for _ in range(files)]
            time.sleep(short_after_s)
            behind = transcribe(http, short)
            long_answers = [f.result() for f in longs]
    return BehindLongFiles(solo, clip, long_answers, behind)


def short_request_bound_s(solo_s: float, clip_s: float) -> float:
    """The bound docs/serving.md states for a short request served among long ones: its solo time, plus one clip
    of a long file (the clip a worker is on when it arrives), plus 2 s."""
    return solo_s + clip_s + 2


def long_files_and_a_short_request(target: Target) -> Outcome:
    """``LONG_FILES`` long files sent at once, then a short request: how long it took against its bound."""
    run = send_long_files_and_a_short_request(target)
    solo, long_answers, behind = run.solo_s, run.long_answers, run.short_answer
    bound = short_request_bound_s(solo, run.clip_s)
    refused = [a for a in long_answers if a.status in (429, 503)]
    served = [a for a in long_answers if a.status == 200]
    verdict = "within" if behind.status == 200 and behind.seconds <= bound else "OVER"
    if behind.status in (429, 503):
        verdict = "refused" + (" with Retry-After" if behind.retry_after else " WITHOUT Retry-After")
    notes = (
        f"short: {behind.status} in {behind.seconds:.1f} s (solo {solo:.2f} s, a {CLIP_S:.0f} s clip {run.clip_s:.2f} s, "
        f"bound solo + clip + 2 = {bound:.1f} s: {verdict}); "
        f"{len(served)} long served, the slowest in {max((a.seconds for a in served), default=0):.0f} s; "
        f"{len(refused)} refused, the slowest answer {max((a.seconds for a in refused), default=0):.1f} s, "
        f"Retry-After {sorted({a.retry_after for a in refused})}; missing Retry-After: "
        f"{without_retry_after([*long_answers, behind])}"
    )
    statuses = [f"long {a.status}" for a in long_answers] + [f"short {behind.status}"]
    return Outcome(statuses, notes)


def wav_bytes(seconds: float, utterance: Utterance) -> bytes:
    """The first ``seconds`` of an utterance, as 16-bit WAV."""
    import soundfile

    from core.audio import SAMPLE_RATE, decode_audio

    samples = decode_audio(utterance.path)[: int(seconds * SAMPLE_RATE)]
    buffer = io.BytesIO()
    soundfile.write(buffer, samples.astype(np.float32), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def send_chat_with_audio_parts(target: Target, parts: int, part_s: float = CHAT_PART_S) -> httpx.Response:
    """One chat request whose user message holds ``parts`` audio parts of ``part_s`` each."""
    data = base64.b64encode(wav_bytes(part_s, short_utterance(target))).decode()
    content = [{"type": "input_audio", "input_audio": {"data": data, "format": "wav"}} for _ in range(parts)]
    body = {"model": "whisper-1", "messages": [{"role": "user", "content": content}]}
    with httpx.Client(base_url=target.url, headers=target.headers, timeout=3600) as http:
        return http.post("/v1/chat/completions", json=body)


def chat_with_many_audio_parts(target: Target) -> Outcome:
    """``CHAT_PARTS`` audio parts of ``CHAT_PART_S`` in one chat request."""
    started = time.perf_counter()
    response = send_chat_with_audio_parts(target, CHAT_PARTS)
    seconds = time.perf_counter() - started
    error = response.json().get("error") if response.status_code >= 400 else None
    said = f"param {error.get('param')!r}: {error.get('message')}" if error else f"{len(response.content)} bytes"
    return Outcome([str(response.status_code)], f"answered in {seconds:.1f} s; {said}"[:300])


CASES = [
    Case(
        "long-files-then-short",
        long_files_and_a_short_request,
        f"{LONG_FILES} files of {LONG_FILE_S / 60:.0f} min, then a short request: served within its solo time + "
        f"one {CLIP_S:.0f} s clip's + 2 s, or refused at once with Retry-After",
    ),
    Case(
        "chat-1000-audio-parts",
        chat_with_many_audio_parts,
        f"{CHAT_PARTS} audio parts of {CHAT_PART_S} s: 400 naming messages, little CPU",
    ),
]
