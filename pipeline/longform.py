"""Long-form transcription shared by every engine: cut at pauses into clips of at most 30 s, stitch back.

Whisper sees 30 seconds at a time. Audio longer than that is split with faster-whisper's Silero voice
activity detection: speech regions (never longer than a clip) are merged into contiguous clips of at
most ``MAX_CLIP_S`` that end at a pause. The engines decode the clips independently, so clips from one
file, and from many requests, can share a batch. Results come back on the file's own timeline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from core.audio import SAMPLE_RATE
from core.types import Segment, Transcription, TranscribeOptions
from core.vad import LONG_FORM_VAD, VadSettings, speech_spans

MAX_CLIP_S = 30.0
# A pause this long ends a clip even when the next speech would still fit: Whisper invents text in long silences.
MAX_INNER_PAUSE_S = 2.0
# A clip whose transcript stops this far before its end is decoded again from there (at most MAX_PASSES times).
MIN_TAIL_S = 1.0
MAX_PASSES = 4

ClipDecoder = Callable[[Sequence[np.ndarray], TranscribeOptions], list[Transcription]]


@dataclass(frozen=True)
class Clip:
    """Samples ``[start, end)`` of the audio."""

    start: int
    end: int

    @property
    def offset_s(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


def plan_clips(audio: np.ndarray, max_clip_s: float = MAX_CLIP_S, vad: VadSettings | None = None) -> list[Clip]:
    """Clips covering the speech in ``audio``; audio that fits one clip is kept whole, without VAD.

    With a request's own ``vad`` every file is cut, however short: each stretch of speech between pauses of at
    least ``silence_duration_ms`` is a clip of its own (none longer than ``max_clip_s``), padded by
    ``prefix_padding_ms``, with speech where Silero's probability passes ``threshold``."""
    max_samples = int(max_clip_s * SAMPLE_RATE)
    if vad is not None:
        return request_vad_clips(audio, max_clip_s, vad)
    if len(audio) <= max_samples:
        return [Clip(0, len(audio))] if len(audio) else []
    return merge_regions(speech_regions(audio, max_clip_s), max_samples, int(MAX_INNER_PAUSE_S * SAMPLE_RATE))


def speech_regions(audio: np.ndarray, max_region_s: float) -> list[Clip]:
    """Stretches of speech cut with ``LONG_FORM_VAD``, none longer than ``max_region_s``."""
    return [Clip(start, end) for start, end in speech_spans(audio, LONG_FORM_VAD, max_speech_s=max_region_s)]


def request_vad_clips(audio: np.ndarray, max_clip_s: float, vad: VadSettings) -> list[Clip]:
    """The clips of a request's own server VAD (see ``plan_clips``)."""
    spans = speech_spans(audio, vad, max_speech_s=max_clip_s)
    max_samples = int(max_clip_s * SAMPLE_RATE)
    return [Clip(start, min(end, start + max_samples)) for start, end in spans]


def merge_regions(regions: Iterable[Clip], max_samples: int, max_pause_samples: int) -> list[Clip]:
    """Join consecutive regions into contiguous clips no longer than ``max_samples``."""
    clips: list[Clip] = []
    for region in regions:
        last = clips[-1] if clips else None
        if last and region.end - last.start <= max_samples and region.start - last.end <= max_pause_samples:
            clips[-1] = Clip(last.start, max(last.end, region.end))
        else:
            clips.append(Clip(region.start, min(region.end, region.start + max_samples)))
    return clips


def cut(audio: np.ndarray, clips: Sequence[Clip]) -> list[np.ndarray]:
    return [audio[clip.start : clip.end] for clip in clips]


def shift_segments(result: Transcription, clip: Clip, first_id: int) -> list[Segment]:
    """A clip's segments moved onto the file's timeline (clamped to the clip) and numbered from ``first_id``; every
    segment and word lasts at least ``MIN_SPAN_S`` (``lasting``)."""
    offset, clip_end = clip.offset_s, _ms(clip.offset_s + clip.duration_s)

    def on_file(seconds: float) -> float:
        return _ms(min(offset + seconds, clip_end))  # to the millisecond: no float noise in the responses

    bounds = (_ms(offset), clip_end)
    segment_spans = lasting([(on_file(s.start), on_file(s.end)) for s in result.segments], *bounds)
    word_spans = iter(lasting([(on_file(w.start), on_file(w.end)) for s in result.segments for w in s.words], *bounds))
    segments = []
    for segment, (start, end) in zip(result.segments, segment_spans, strict=True):
        words = [word.model_copy(update=dict(zip(("start", "end"), next(word_spans)))) for word in segment.words]
        segments.append(
            segment.model_copy(
                update={
                    "id": first_id + len(segments),
                    "seek": round(offset * 100),  # Whisper's seek counts 10 ms frames
                    "start": start,
                    "end": end,
                    "words": words,
                }
            )
        )
    return segments


MIN_SPAN_S = 0.02
"""The shortest a segment or word lasts: Whisper's time step. A word Whisper times with no duration (a timestamp
repeated, or text placed past the end of the audio and clamped there) still takes some time to say."""


def lasting(spans: Sequence[tuple[float, float]], start: float, end: float) -> list[tuple[float, float]]:
    """Spans (in order, within ``start`` to ``end``) that each last at least ``MIN_SPAN_S`` and do not overlap,
    moved as little as that needs: spans that already do are kept as they are. A span too short grows into the
    time after it, else into the time before it; where spans are crowded, their neighbours make room."""
    if not spans:
        return []
    if end - start < len(spans) * MIN_SPAN_S:  # no room for them all: share the time out evenly
        step = (end - start) / len(spans)
        return [(_ms(start + i * step), _ms(start + (i + 1) * step)) for i in range(len(spans))]
    grown = [[span_start, span_end] for span_start, span_end in spans]
    for i, span in enumerate(grown):  # a span too short takes the free time after it, then the free time before it
        missing = MIN_SPAN_S - (span[1] - span[0])
        if missing > 0:
            after = max((grown[i + 1][0] if i + 1 < len(grown) else end) - span[1], 0.0)
            span[1] += min(after, missing)
            before = max(span[0] - (grown[i - 1][1] if i else start), 0.0)
            span[0] -= min(before, missing - min(after, missing))
    pushed: list[tuple[float, float]] = []
    cursor = start
    for span_start, span_end in grown:  # forwards: each span after the one before, long enough
        span_start = max(span_start, cursor)
        cursor = max(span_end, span_start + MIN_SPAN_S)
        pushed.append((span_start, cursor))
    placed: list[tuple[float, float]] = []
    cursor = end
    for span_start, span_end in reversed(pushed):  # backwards: each span before the one after, within the end
        span_end = min(span_end, cursor)
        cursor = min(span_start, span_end - MIN_SPAN_S)
        placed.append((_ms(cursor), _ms(span_end)))
    return placed[::-1]


def _ms(seconds: float) -> float:
    return round(seconds, 3)


def stitch(
    audio_samples: int, clips: Sequence[Clip], results: Sequence[Transcription], options: TranscribeOptions
) -> Transcription:
    """One transcription of the whole file from its clips' results, in order."""
    segments: list[Segment] = []
    for clip, result in zip(clips, results, strict=True):
        segments.extend(shift_segments(result, clip, len(segments)))
    language = options.language or next((r.language for r in results if r.language), None)
    return Transcription(
        text=" ".join(r.text.strip() for r in results if r.text.strip()),
        language=language,
        duration=audio_samples / SAMPLE_RATE,
        segments=segments,
    )


def decode_completely(
    audio: np.ndarray, clips: Sequence[Clip], options: TranscribeOptions, decode: ClipDecoder, batch_size: int | None
) -> list[tuple[Clip, Transcription]]:
    """Decode every clip, ``batch_size`` at a time (None: all in one call), and continue the ones whose
    transcript stops short.

    Whisper may end its output before the end of a window; its own long-form loop then seeks to the last
    timestamp and decodes again, conditioned on the text before. A single batched pass would silently drop that
    speech, so each such remainder that still holds speech becomes a clip of the next pass, decoded after the
    clip's text so far (``continued``). Results come back in time order.
    """
    done: list[tuple[Clip, Transcription]] = []
    pending = [(clip, options) for clip in clips]
    for _ in range(MAX_PASSES):
        if not pending:
            break
        results = decode_grouped(audio, pending, decode, batch_size)
        done.extend((clip, result) for (clip, _), result in zip(pending, results, strict=True))
        pending = [
            (tail, continued(clip_options, result.text))
            for (clip, clip_options), result in zip(pending, results)
            if (tail := unfinished_tail(audio, clip, result))
        ]
    return sorted(done, key=lambda pair: pair[0].start)


def continued(options: TranscribeOptions, text_so_far: str) -> TranscribeOptions:
    """The options of a clip's remainder: the request's prompt followed by what the clip's transcript said so far
    (Whisper's ``condition_on_previous_text``; the engines keep a prompt's last 223 tokens). Without it a short
    remainder decoded after the request's prompt alone can come back empty, its words lost."""
    prompt = " ".join(part for part in (options.initial_prompt, text_so_far.strip()) if part)
    return replace(options, initial_prompt=prompt or None)


def decode_grouped(
    audio: np.ndarray, pending: Sequence[tuple[Clip, TranscribeOptions]], decode: ClipDecoder, batch_size: int | None
) -> list[Transcription]:
    """Each clip decoded with its options, the clips with equal options batched together; results in order."""
    groups: list[tuple[TranscribeOptions, list[int]]] = []
    for index, (_, clip_options) in enumerate(pending):
        group = next((members for group_options, members in groups if group_options == clip_options), None)
        if group is None:
            groups.append((clip_options, [index]))
        else:
            group.append(index)
    results: dict[int, Transcription] = {}
    for group_options, members in groups:
        pieces = cut(audio, [pending[index][0] for index in members])
        step = batch_size or len(pieces)
        decoded: list[Transcription] = []
        for first in range(0, len(pieces), step):
            decoded.extend(decode(pieces[first : first + step], group_options))
        results.update(zip(members, decoded, strict=True))
    return [results[index] for index in range(len(pending))]


def unfinished_tail(audio: np.ndarray, clip: Clip, result: Transcription) -> Clip | None:
    """The part of ``clip`` after its last transcribed segment, when it is long enough and holds speech."""
    if not result.segments:
        return None
    covered = clip.start + round(result.segments[-1].end * SAMPLE_RATE)
    if covered <= clip.start or clip.end - covered < MIN_TAIL_S * SAMPLE_RATE:
        return None
    if not speech_regions(audio[covered : clip.end], MAX_CLIP_S):
        return None
    return Clip(covered, clip.end)


def transcribe_long(
    audio: np.ndarray, options: TranscribeOptions, decode: ClipDecoder, batch_size: int | None
) -> Transcription:
    """Plan clips, decode them completely in batches, stitch."""
    clips = plan_clips(audio, vad=options.vad)
    options = replace(options, vad=None)  # how the file was cut is no decoding option: its clips batch with others
    pairs = decode_completely(audio, clips, options, decode, batch_size)
    return stitch(len(audio), [clip for clip, _ in pairs], [result for _, result in pairs], options)


def stream_long(audio: np.ndarray, options: TranscribeOptions, decode: ClipDecoder) -> Iterator[Segment]:
    """Segments clip by clip, each as soon as its clip is decoded."""
    emitted = 0
    clips = plan_clips(audio, vad=options.vad)
    options = replace(options, vad=None)
    for clip in clips:
        for piece, result in decode_completely(audio, [clip], options, decode, batch_size=1):
            segments = shift_segments(result, piece, emitted)
            emitted += len(segments)
            yield from segments
