"""Live transcription over ``/v1/realtime`` with the official ``openai`` SDK: latency, accuracy and scale.

    .venv/bin/python -m bench.realtime [--url http://127.0.0.1:3000] [--utterances 8] [--sessions 1,4,8] [--seconds 40]

Without --url it starts its own ``bentoml serve`` (the embedded tiny.en). On the English short utterances:
- latency: from the first speech sample sent to the first delta, and from the last speech sample sent to
  ``completed``, less the silence the server VAD must hear first (``silence_duration_ms``, 500 ms); speech
  samples, not file samples: each file's own leading and trailing silence (Silero VAD) is left out;
- accuracy: WER of the live transcripts (streamed at real time) next to the same files sent to
  ``/v1/audio/transcriptions``;
- scale: 1, 4, 8 ... sessions at once, each streaming utterances at real time for --seconds; the completed lag
  of the first and second halves of the run (sustained means it does not grow), and the partial cadence the
  server reached (``stt_live_partial_interval_seconds``).

The streaming helpers are shared with ``tests/e2e/test_realtime_e2e.py``.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

PCM_RATE = 24_000
CHUNK_S = 0.1
LEAD_S = 0.3
"""Silence sent before the speech."""
TAIL_S = 1.2
"""Silence sent after it: the server VAD ends the turn after 500 ms of it."""
SILENCE_DURATION_S = 0.5


def to_pcm24(audio16k: np.ndarray) -> bytes:
    from scipy.signal import resample_poly

    samples = resample_poly(np.asarray(audio16k, dtype=np.float64), 3, 2)
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def padded(audio16k: np.ndarray, lead_s: float = LEAD_S, tail_s: float = TAIL_S) -> np.ndarray:
    lead, tail = np.zeros(int(lead_s * 16_000), np.float32), np.zeros(int(tail_s * 16_000), np.float32)
    return np.concatenate([lead, np.asarray(audio16k, np.float32), tail])


@dataclass
class TurnResult:
    events: list[Any] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    speech_first_sent: float = 0.0
    speech_last_sent: float = 0.0

    def of_type(self, suffix: str) -> list[Any]:
        return [e for e in self.events if e.type.endswith(suffix)]

    def time_of_first(self, suffix: str) -> float | None:
        return next((t for e, t in zip(self.events, self.times) if e.type.endswith(suffix)), None)

    @property
    def all_turns_done(self) -> bool:
        """Every turn that started has stopped, and every stopped turn has its transcript (or failure)."""
        started, stopped = len(self.of_type("speech_started")), len(self.of_type("speech_stopped"))
        return started == stopped and len(self.of_type(".completed")) + len(self.of_type(".failed")) >= stopped

    @property
    def transcript(self) -> str:
        return " ".join(e.transcript for e in self.of_type(".completed"))

    @property
    def first_delta_latency(self) -> float | None:
        first = self.time_of_first(".delta")
        return None if first is None else first - self.speech_first_sent

    @property
    def completed_lag(self) -> float | None:
        """From the last speech sample sent to the last turn's ``completed``, less the silence the VAD waits for."""
        done = [t for e, t in zip(self.events, self.times) if e.type.endswith(".completed")]
        return done[-1] - self.speech_last_sent - SILENCE_DURATION_S if done else None


def send_paced(connection: Any, data: bytes, speed: float, bytes_per_s: int, chunk_s: float = CHUNK_S) -> float:
    """Append ``data`` in ``chunk_s`` pieces at ``speed`` times real time; returns when the first piece went."""
    step = max(2, int(bytes_per_s * chunk_s) // 2 * 2)
    started = time.monotonic()
    for index, first in enumerate(range(0, len(data), step)):
        due = started + index * chunk_s / speed
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        connection.input_audio_buffer.append(audio=base64.b64encode(data[first : first + step]).decode())
    return started


def stream_turn(connection: Any, audio16k: np.ndarray, speed: float = 1.0, timeout_s: float = 60.0) -> TurnResult:
    """One utterance (padded with silence) as 24 kHz PCM under server VAD; its events until every turn the
    server VAD cut it into has its ``completed`` (or ``failed``). The trailing silence has ended the last turn by
    the time all is sent; a ``clear`` then marks the end of the utterance in the server's event stream."""
    result = TurnResult()
    data = to_pcm24(padded(audio16k))
    sent: dict[str, float] = {}

    def send() -> None:
        sent["start"] = send_paced(connection, data, speed, PCM_RATE * 2)
        connection.input_audio_buffer.clear()

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        event = connection.recv()
        result.events.append(event)
        result.times.append(time.monotonic())
        if result.of_type("buffer.cleared") and result.all_turns_done:
            break
    sender.join()
    started = sent.get("start", 0.0)
    onset_s, end_s = speech_bounds(audio16k)
    result.speech_first_sent = started + (LEAD_S + onset_s) / speed
    result.speech_last_sent = started + (LEAD_S + end_s) / speed
    return result


def speech_bounds(audio16k: np.ndarray) -> tuple[float, float]:
    """Where the file's speech starts and ends (Silero VAD, no padding): the latencies count from the first and
    last *speech* samples, not from the file's own leading or trailing silence."""
    from core.vad import VadSettings, speech_spans

    unpadded = VadSettings(prefix_padding_ms=0, silence_duration_ms=2000)
    spans = speech_spans(np.asarray(audio16k, np.float32), unpadded)
    if not spans:
        return 0.0, len(audio16k) / 16_000
    return spans[0][0] / 16_000, spans[-1][1] / 16_000


def connect(base_url: str, api_key: str = "not-needed", model: str = "whisper-1"):
    import openai

    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0)
    return client.realtime.connect(model=model, extra_query={"intent": "transcription"})


def open_session(base_url: str, api_key: str = "not-needed", **transcription: Any):
    """A connected session whose ``session.created`` has been read (and ``session.updated``, with an update)."""
    manager = connect(base_url, api_key)
    connection = manager.enter()
    created = connection.recv()
    assert created.type == "session.created", created
    if transcription:
        connection.session.update(session={"type": "transcription", "audio": {"input": {"transcription": transcription}}})
        assert connection.recv().type == "session.updated"
    return manager, connection


# ---------------------------------------------------------------------- benchmark


def _file_transcripts(base_url: str, utterances: list) -> list[str]:
    texts = []
    with httpx.Client(base_url=base_url, timeout=300) as http:
        for utterance in utterances:
            with utterance.path.open("rb") as f:
                response = http.post("/v1/audio/transcriptions", files={"file": f}, data={"model": "whisper-1"})
            texts.append(response.json()["text"])
    return texts


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def accuracy_and_latency(base_url: str, utterances: list, audios: list[np.ndarray]) -> dict[str, Any]:
    from bench.corpus import word_error_rate

    manager, connection = open_session(base_url)
    try:
        turns = [stream_turn(connection, audio) for audio in audios]
    finally:
        manager.__exit__(None, None, None)
    references = [u.text for u in utterances]
    first = [t.first_delta_latency for t in turns if t.first_delta_latency is not None]
    lags = [t.completed_lag for t in turns if t.completed_lag is not None]
    return {
        "live_wer": word_error_rate(references, [t.transcript for t in turns]),
        "file_wer": word_error_rate(references, _file_transcripts(base_url, utterances)),
        "first_delta_p50": _percentile(first, 50),
        "first_delta_p90": _percentile(first, 90),
        "completed_lag_p50": _percentile(lags, 50),
        "completed_lag_p90": _percentile(lags, 90),
        "partial_deltas_per_turn": statistics.mean(len(t.of_type(".delta")) for t in turns),
    }


def scale(base_url: str, audios: list[np.ndarray], sessions: int, seconds: float) -> dict[str, Any]:
    from bench.server import metric_total

    before = httpx.get(f"{base_url}/metrics").text
    results: list[list[TurnResult]] = [[] for _ in range(sessions)]

    def run(index: int) -> None:
        manager, connection = open_session(base_url)
        stop = time.monotonic() + seconds
        try:
            turn = index
            while time.monotonic() < stop:
                results[index].append(stream_turn(connection, audios[turn % len(audios)]))
                turn += 1
        finally:
            manager.__exit__(None, None, None)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(sessions)]
    for i, thread in enumerate(threads):
        thread.start()
        time.sleep(0.37 * i % 1.0)  # sessions out of step, as real speakers are
    for thread in threads:
        thread.join()
    after = httpx.get(f"{base_url}/metrics").text
    lags_early, lags_late, first = [], [], []
    for turns in results:
        half = len(turns) // 2
        lags_early += [t.completed_lag for t in turns[:half] if t.completed_lag is not None]
        lags_late += [t.completed_lag for t in turns[half:] if t.completed_lag is not None]
        first += [t.first_delta_latency for t in turns if t.first_delta_latency is not None]
    interval = lambda text, name: metric_total(text, f"stt_live_partial_interval_seconds_{name}")  # noqa: E731
    count = interval(after, "count") - interval(before, "count")
    return {
        "sessions": sessions,
        "turns": sum(len(t) for t in results),
        "first_delta_p50": _percentile(first, 50),
        "lag_p50_first_half": _percentile(lags_early, 50),
        "lag_p50_second_half": _percentile(lags_late, 50),
        "lag_p90": _percentile(lags_early + lags_late, 90),
        "partial_cadence_s": (interval(after, "sum") - interval(before, "sum")) / count if count else float("nan"),
    }


def main() -> None:
    from bench.corpus import english_short_utterances
    from bench.server import running_server
    from core.audio import decode_audio

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server; default: start one")
    parser.add_argument("--utterances", type=int, default=8)
    parser.add_argument("--sessions", default="1,4,8")
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    utterances = sorted(english_short_utterances(), key=lambda u: u.duration_s)[: args.utterances]
    audios = [decode_audio(u.path) for u in utterances]
    with nullcontext(args.url) if args.url else running_server() as server:
        url = server if isinstance(server, str) else server.url
        quality = accuracy_and_latency(url, utterances, audios)
        print("| live WER | file WER | first delta p50 / p90 (s) | completed lag p50 / p90 (s) | deltas per turn |")
        print("|---|---|---|---|---|")
        print(
            f"| {quality['live_wer']:.1%} | {quality['file_wer']:.1%} | {quality['first_delta_p50']:.2f} / "
            f"{quality['first_delta_p90']:.2f} | {quality['completed_lag_p50']:.2f} / {quality['completed_lag_p90']:.2f} "
            f"| {quality['partial_deltas_per_turn']:.1f} |"
        )
        print()
        print("| sessions | turns | first delta p50 (s) | completed lag p50, 1st / 2nd half (s) | lag p90 (s) | partial cadence (s) |")
        print("|---|---|---|---|---|---|")
        for sessions in (int(n) for n in args.sessions.split(",")):
            row = scale(url, audios, sessions, args.seconds)
            print(
                f"| {sessions} | {row['turns']} | {row['first_delta_p50']:.2f} | {row['lag_p50_first_half']:.2f} / "
                f"{row['lag_p50_second_half']:.2f} | {row['lag_p90']:.2f} | {row['partial_cadence_s']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
