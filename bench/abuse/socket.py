"""Abuse of the realtime socket (``/v1/realtime``): a client that floods frames and never reads, a hundred sockets at
once, one session sending ten minutes of speech as fast as it can while another client sends files, malformed
frames, and a page of another origin. Each case takes its sizes as arguments: the benchmark runs the issue's, the
end-to-end test smaller ones."""

from __future__ import annotations

import base64
import json
import statistics
import threading
import time
from collections import Counter
from functools import partial
from typing import Any

import httpx

from .case import Case, Outcome, Target

PATH = "/v1/realtime?intent=transcription"
PCM_BYTES_PER_S = 48_000
"""24 kHz 16-bit PCM, the socket's default format."""


def ws_url(target: Target) -> str:
    return target.url.replace("http://", "ws://", 1) + PATH


def open_socket(
    target: Target, *, origin: str | None = None, max_queue: int | None = 16, keepalive: bool = True
) -> Any:
    """A WebSocket to the realtime route with the target's key (``max_queue``: events the client takes off the
    network before its reads; once that many wait, it reads no more until the caller does; ``keepalive``: whether
    it pings the server)."""
    from websockets.sync.client import connect

    return connect(
        ws_url(target), additional_headers=target.headers, origin=origin, max_size=None, max_queue=max_queue,
        open_timeout=60, close_timeout=5, ping_interval=20 if keepalive else None,
    )


def read_until_closed(ws: Any, timeout_s: float) -> tuple[list[dict], int | None, str]:
    """The events left to read, then the close frame's code and reason (None: the connection ended without one)."""
    from websockets.exceptions import ConnectionClosed

    events, deadline = [], time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            events.append(json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic()))))
    except (ConnectionClosed, TimeoutError, OSError):
        pass
    received = ws.protocol.close_rcvd
    return events, (received.code if received else None), (received.reason if received else "")


# ---------------------------------------------------------------------- a client that never reads


def non_reading_flooder(
    target: Target, big_frames: int = 30, frame_mib: float = 15, small_frames: int = 200_000
) -> Outcome:
    """``big_frames`` frames of ``{"type": "AAA…"}`` (``frame_mib`` MiB each: an unknown type the server used to
    echo whole), then small unknown events, without reading a single event; then it reads what is left."""
    ws = open_socket(target, max_queue=1, keepalive=False)  # its own pings would time out first: it never reads
    big = '{"type": "' + "A" * int(frame_mib * 2**20) + '"}'
    sent_big = sent_small = 0
    stopped = "sent everything"
    try:
        for _ in range(big_frames):
            ws.send(big)
            sent_big += 1
        for _ in range(small_frames):
            ws.send('{"type": "A"}')
            sent_small += 1
    except Exception as exc:  # the server closed the connection under the sender
        stopped = f"sending failed ({type(exc).__name__})"
    events, code, reason = read_until_closed(ws, timeout_s=60)
    ws.close()
    largest = max((len(json.dumps(e)) for e in events), default=0)
    if code:
        status = f"close {code}"
    else:
        # The server closed while our frames were still arriving: its kernel answers the unread bytes with a reset,
        # which can overtake its close frame on the way here.
        status = "reset while sending" if stopped != "sent everything" else "no close frame"
    return Outcome(
        statuses=[status],
        notes=f"{sent_big} x {frame_mib:g} MiB frames and {sent_small} small ones sent, {stopped}; {len(events)} "
        f"events read after, the largest {largest} bytes; close reason: {reason!r}",
    )


# ---------------------------------------------------------------------- many sockets


def many_sockets(target: Target, sockets: int = 100) -> Outcome:
    """``sockets`` sessions opened one after another with one key, all kept open; what each got first."""
    opened, statuses, refusal = [], [], ""
    try:
        for _ in range(sockets):
            ws = open_socket(target)
            first = json.loads(ws.recv(timeout=60))
            if first["type"] == "session.created":
                opened.append(ws)
                statuses.append("session.created")
                continue
            refusal = refusal or first["error"]["message"]
            _, code, _ = read_until_closed(ws, timeout_s=10)
            statuses.append(f"error {first['error']['code']} + close {code}")
            ws.close()
    finally:
        for ws in opened:
            ws.close()
    return Outcome(statuses=statuses, notes=f"{len(opened)} sessions open at once; the refusal: {refusal!r}")


# ---------------------------------------------------------------------- one session flooding live audio


def live_flood(
    target: Target,
    minutes: float = 10.0,
    speed: float | None = None,
    chunk_s: float = 0.5,
    file_every_s: float = 1.0,
    solo_runs: int = 3,
) -> Outcome:
    """One session sends ``minutes`` of speech (corpus utterances back to back) at ``speed`` times real time (None:
    as fast as it can), reading its events, while another client posts a short file every ``file_every_s``: the file
    requests' statuses and latencies (against the same file alone, before), the session's appends and turns."""
    from bench.corpus import assemble, english_short_utterances
    from bench.realtime import to_pcm24

    utterances = english_short_utterances(target.corpus_dir)
    audio, _ = assemble(utterances, minutes * 60)
    pcm = to_pcm24(audio)
    short = min((u for u in utterances if u.duration_s >= 3), key=lambda u: u.duration_s)
    with httpx.Client(base_url=target.url, headers=target.headers, timeout=300) as http:
        post = partial(_post_file, http, short.path.read_bytes())
        solo = [post()[1] for _ in range(solo_runs)]
        ws = open_socket(target)
        json.loads(ws.recv(timeout=60))
        events: Counter[str] = Counter()
        reader = threading.Thread(target=_count_events, args=(ws, events), daemon=True)
        reader.start()
        flooding = threading.Event()
        flooding.set()
        files: list[tuple[int, float]] = []
        poster = threading.Thread(target=_post_while, args=(post, flooding, file_every_s, files), daemon=True)
        poster.start()
        started, step = time.monotonic(), int(chunk_s * PCM_BYTES_PER_S) // 2 * 2
        for index, first in enumerate(range(0, len(pcm), step)):
            if speed and (ahead := started + index * chunk_s / speed - time.monotonic()) > 0:
                time.sleep(ahead)
            ws.send(json.dumps({"type": "input_audio_buffer.append",
                                "audio": base64.b64encode(pcm[first : first + step]).decode()}))
        sent_s = time.monotonic() - started
        appends = index + 1
        deadline = time.monotonic() + 600
        while events["committed"] > events["completed"] + events["failed"] and time.monotonic() < deadline:
            time.sleep(0.5)
        flooding.clear()
        poster.join()
        ws.close()
    latencies = [latency for _, latency in files]
    audio_s = len(pcm) / PCM_BYTES_PER_S
    errors = ", ".join(f"{n} {kind}" for kind, n in events.items() if kind.startswith("error "))
    return Outcome(
        statuses=[f"file {status}" for status, _ in files]
        + [f"turn {kind}" for kind in ("completed", "failed") for _ in range(events[kind])],
        notes=f"{audio_s:.0f} s of speech in {appends} appends sent in {sent_s:.1f} s ({audio_s / sent_s:.1f}x real "
        f"time); errors: {errors or 'none'}; turns committed {events['committed']}, completed {events['completed']}, "
        f"failed {events['failed']}; the file alone {statistics.median(solo):.2f} s (median of {solo_runs}), during "
        f"the flood median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s ({len(files)} requests)",
    )


def _post_file(http: httpx.Client, data: bytes) -> tuple[int, float]:
    started = time.monotonic()
    response = http.post("/v1/audio/transcriptions", files={"file": ("short.flac", data)}, data={"model": "whisper-1"})
    return response.status_code, time.monotonic() - started


def _post_while(post: Any, flooding: threading.Event, every_s: float, files: list[tuple[int, float]]) -> None:
    while flooding.is_set():
        files.append(post())
        time.sleep(every_s)


def _count_events(ws: Any, events: Counter[str]) -> None:
    from websockets.exceptions import ConnectionClosed

    try:
        while True:
            event = json.loads(ws.recv())
            kind = event["type"].rsplit(".", 1)[-1]
            events[kind if event["type"] != "error" else f"error {event['error']['code']}"] += 1
    except ConnectionClosed:
        return


# ---------------------------------------------------------------------- malformed frames


def malformed_frames(target: Target) -> Outcome:
    """Frames that are not events (deep nesting, broken JSON, binary, a non-object, a 512 KiB type, an object as
    event_id), each answered with an error event; then a spoken turn, which the session still transcribes."""
    from bench.corpus import english_short_utterances
    from bench.realtime import padded, to_pcm24
    from core.audio import decode_audio

    deep = "[" * 100_000 + "]" * 100_000
    frames: list[str | bytes] = [
        '{"type": "session.update", "session": ' + deep + "}",
        deep,
        "{" * 50_000,
        "not json",
        b"\x00\x01binary",
        "[1, 2]",
        json.dumps({"type": "A" * 2**19}),
        json.dumps({"type": "response.create", "event_id": {"an": "object"}}),
    ]
    ws = open_socket(target)
    json.loads(ws.recv(timeout=60))
    statuses = []
    for frame in frames:
        ws.send(frame)
        event = json.loads(ws.recv(timeout=60))
        statuses.append(f"{event['type']} {event.get('error', {}).get('code')}")
    utterance = min(english_short_utterances(target.corpus_dir), key=lambda u: abs(u.duration_s - 4))
    pcm = to_pcm24(padded(decode_audio(utterance.path)))
    for first in range(0, len(pcm), 9600):
        ws.send(json.dumps({"type": "input_audio_buffer.append",
                            "audio": base64.b64encode(pcm[first : first + 9600]).decode()}))
    transcript = ""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        event = json.loads(ws.recv(timeout=120))
        if event["type"].endswith(".completed"):
            transcript = event["transcript"]
            statuses.append("turn completed")
            break
    ws.close()
    return Outcome(statuses=statuses, notes=f"then the turn: {transcript[:60]!r}")


# ---------------------------------------------------------------------- a page of another origin


def other_origin(target: Target) -> Outcome:
    """A handshake from a page of another origin, then from the server's own page."""
    from websockets.exceptions import InvalidStatus

    statuses = []
    try:
        open_socket(target, origin="https://evil.example").close()
        statuses.append("evil.example: accepted")
    except InvalidStatus as exc:
        body = json.loads(exc.response.body or b"{}")
        statuses.append(f"evil.example: {exc.response.status_code} {body.get('error', {}).get('code')}")
    ws = open_socket(target, origin=target.url)
    statuses.append(f"own page: {json.loads(ws.recv(timeout=60))['type']}")
    ws.close()
    return Outcome(statuses=statuses)


CASES = [
    Case("socket_flood_15mib_frames", non_reading_flooder,
         "closed before +100 MB (30 frames of 15 MiB, then small ones, never reading)"),
    Case("socket_flood_not_reading", partial(non_reading_flooder, frame_mib=3.9),
         "closed before +100 MB (30 frames of 3.9 MiB, under the message bound, then small ones, never reading)"),
    Case("socket_100_sessions", many_sockets, "the excess refused with a clear error"),
    Case("socket_live_flood_10min", live_flood,
         "no 429 for other clients' file requests (10 min of speech sent as fast as the client can)"),
    Case("socket_live_4x_10min", partial(live_flood, speed=4.0),
         "no 429 for other clients' file requests (10 min of speech at the fastest pace taken in, 4x)"),
    Case("socket_malformed_frames", malformed_frames, "an error event for each, the session lives on"),
    Case("socket_other_origin", other_origin, "403 for another origin; the own page served"),
]
