"""Renders a transcription in the OpenAI audio API's response formats: the bodies of the /v1 audio routes, and what
the bulk runner writes for each id whichever executor transcribed it (and the media type of each, which the routes send)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Set
from datetime import timedelta
from typing import Any

import srt
import webvtt

from core.languages import LANGUAGES
from core.types import GENERATED_SPEAKER_LABEL, Segment, Task, TokenLogprob, Transcription

RESPONSE_FORMATS: tuple[str, ...] = ("json", "text", "srt", "vtt", "verbose_json", "diarized_json", "jsonl")
DIARIZED_FORMATS = frozenset({"diarized_json", "jsonl"})

MEDIA_TYPES = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "diarized_json": "application/json",
    "jsonl": "application/jsonl",
}


def usage(result: Transcription) -> dict[str, Any]:
    """OpenAI's ``UsageDuration``: what a transcription is billed by (translations have no usage)."""
    return {"type": "duration", "seconds": result.duration}


def logprobs_of(segments: list[Segment]) -> list[dict[str, Any]]:
    """OpenAI's ``logprobs``: every text token of the segments with its log-probability and bytes."""
    return tokens_json([token for segment in segments for token in segment.logprobs or []])


def tokens_json(tokens: list[TokenLogprob]) -> list[dict[str, Any]]:
    """OpenAI's ``Logprob`` entries: ``{token, bytes, logprob}``."""
    return [token.model_dump() for token in tokens]


def to_json(result: Transcription, task: Task = "transcribe", logprobs: bool = False) -> dict[str, Any]:
    if task == "translate":
        return {"text": result.text}
    body: dict[str, Any] = {"text": result.text}
    if logprobs:
        body["logprobs"] = logprobs_of(result.segments)
    return {**body, "usage": usage(result)}


def to_text(result: Transcription) -> str:
    return result.text + "\n"


def _cues(result: Transcription) -> list[Segment]:
    return [s for s in result.segments if s.text.strip()]


def to_srt(result: Transcription) -> str:
    subtitles = [
        srt.Subtitle(index=i, start=timedelta(seconds=s.start), end=timedelta(seconds=s.end), content=s.text.strip())
        for i, s in enumerate(_cues(result), start=1)
    ]
    return srt.compose(subtitles, reindex=False)


def _vtt_timestamp(seconds: float) -> str:
    return srt.timedelta_to_srt_timestamp(timedelta(seconds=seconds)).replace(",", ".")


def to_vtt(result: Transcription) -> str:
    captions = [
        webvtt.Caption(start=_vtt_timestamp(s.start), end=_vtt_timestamp(s.end), text=s.text.strip())
        for s in _cues(result)
    ]
    return webvtt.WebVTT(captions=captions).content


def language_name(code: str | None) -> str | None:
    """OpenAI's verbose_json names the language in full ("english")."""
    return LANGUAGES.get(code, code) if code else code


def to_verbose_json(result: Transcription, task: Task, granularities: set[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": task,
        # A translation's text is English, whatever was spoken (OpenAI reports "english" too).
        "language": "english" if task == "translate" else language_name(result.language),
        "duration": result.duration,
        "text": result.text,
    }
    if "segment" in granularities or not granularities:
        body["segments"] = [s.model_dump(exclude={"words", "speaker"}) for s in result.segments]
    if "word" in granularities:
        # Words keep Whisper's leading space inside the pipeline (segments are rebuilt from them); OpenAI's have none.
        body["words"] = [
            {**w.model_dump(exclude={"probability", "speaker"}), "word": w.word.strip()}
            for s in result.segments
            for w in s.words
        ]
    if task == "transcribe":
        # An extension: how sure the engine was of the spoken language (1.0 when the request named it).
        body["language_probability"] = result.language_probability
        body["usage"] = usage(result)
    return body


AUDIO_TOKENS_PER_SECOND = 50
"""Whisper's encoder: 1500 positions for 30 s of audio."""


def token_usage(duration: float, segments: list[Segment]) -> dict[str, Any] | None:
    """OpenAI's token ``Usage``, the only usage shape ``transcript.text.done`` declares: the audio counted as the
    encoder positions Whisper gives it (50 a second), the output as the tokens the engine decoded. None when the
    engine does not report its tokens (the ``transformers`` engine)."""
    if any(s.text.strip() and not s.tokens for s in segments):
        return None
    audio_tokens = round(duration * AUDIO_TOKENS_PER_SECOND)
    output_tokens = sum(len(s.tokens) for s in segments)
    return {
        "type": "tokens",
        "input_tokens": audio_tokens,
        "output_tokens": output_tokens,
        "total_tokens": audio_tokens + output_tokens,
        "input_token_details": {"audio_tokens": audio_tokens},
    }


def openai_speaker_label(speaker: str | None, order: dict[str, str], names: Set[str] = frozenset()) -> str:
    """OpenAI labels speakers A, B, ... in order of first appearance; a known speaker (one of ``names``, from
    ``known_speaker_names[]``) keeps its name, which no other speaker's label takes."""
    if speaker is not None and speaker in names:
        return speaker
    key = speaker or "unknown"
    if key not in order:
        taken = set(order.values()) | set(names)
        order[key] = next(label for label in _speaker_labels() if label not in taken)
    return order[key]


def _speaker_labels() -> Iterator[str]:
    yield from (chr(ord("A") + index) for index in range(26))
    yield from (f"S{index}" for index in itertools.count(27))


def diarized_segments(segments: list[Segment]) -> list[dict[str, Any]]:
    """OpenAI's diarized segments (``transcript.text.segment``), speakers labelled A, B, ... but for known speakers,
    who keep their names; empty ones left out."""
    labels: dict[str, str] = {}
    names = {s.speaker for s in segments if s.speaker and not GENERATED_SPEAKER_LABEL.fullmatch(s.speaker)}
    return [
        {
            "id": f"seg_{i:03d}",
            "type": "transcript.text.segment",
            "start": s.start,
            "end": s.end,
            "speaker": openai_speaker_label(s.speaker, labels, names),
            "text": s.text.strip(),
        }
        for i, s in enumerate(s for s in segments if s.text.strip())
    ]


def to_diarized_json(result: Transcription) -> dict[str, Any]:
    return {
        "task": "transcribe",
        "duration": result.duration,
        "text": result.text,
        "segments": diarized_segments(result.segments),
        "usage": usage(result),
    }


def speaker_turns_with_text(segments: list[Segment]) -> list[dict[str, Any]]:
    """Consecutive segments of one speaker joined into ``{"speaker", "start", "end", "text"}`` records."""
    records: list[dict[str, Any]] = []
    for segment in segments:
        text = segment.text.strip()
        if records and records[-1]["speaker"] == segment.speaker:
            last = records[-1]
            last["end"] = max(last["end"], segment.end)
            last["text"] = f"{last['text']} {text}".strip()
        else:
            records.append({"speaker": segment.speaker, "start": segment.start, "end": segment.end, "text": text})
    return records


def to_jsonl(result: Transcription) -> str:
    """One ``{"speaker", "start", "end", "text"}`` line per speaker turn."""
    return "".join(json.dumps(turn, ensure_ascii=False) + "\n" for turn in speaker_turns_with_text(_cues(result)))


def render(
    result: Transcription, response_format: str, task: Task, granularities: set[str], logprobs: bool = False
) -> str | dict[str, Any]:
    if response_format == "json":
        return to_json(result, task, logprobs)
    if response_format == "verbose_json":
        return to_verbose_json(result, task, granularities)
    if response_format == "diarized_json":
        return to_diarized_json(result)
    return {"text": to_text, "srt": to_srt, "vtt": to_vtt, "jsonl": to_jsonl}[response_format](result)
