"""A transcription session's configuration as OpenAI's Realtime API shows it, and ``session.update`` applied to it.

The shapes are those of the ``openai`` package's ``types/realtime`` (the GA protocol): ``session.audio.input``
holds ``format``, ``transcription`` (``model``, ``language``, ``prompt``) and ``turn_detection`` (``server_vad``
or null); ``include`` may ask for ``item.input_audio_transcription.logprobs``. Fields this server does not act on
(noise reduction) are accepted and ignored.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.vad import (
    MAX_DURATION_MS,
    MAX_THRESHOLD,
    MIN_DURATION_MS,
    MIN_THRESHOLD,
    OPENAI_SERVER_VAD,
    VadSettings,
)
from pipeline.live import LiveConfig

from ..models.names import requested_model

AudioFormat = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
LOGPROBS = "item.input_audio_transcription.logprobs"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FormatUpdate(_Lenient):
    type: AudioFormat = "audio/pcm"
    rate: Literal[24000] | None = None
    """OpenAI's PCM is 24 kHz, and only that."""


class TranscriptionUpdate(_Lenient):
    model: str | None = None
    language: str | None = None
    prompt: str | None = None


class TurnDetectionUpdate(_Lenient):
    type: Literal["server_vad"]
    threshold: float | None = Field(None, ge=MIN_THRESHOLD, le=MAX_THRESHOLD)
    prefix_padding_ms: int | None = Field(None, ge=MIN_DURATION_MS, le=MAX_DURATION_MS)
    silence_duration_ms: int | None = Field(None, ge=MIN_DURATION_MS, le=MAX_DURATION_MS)


class InputUpdate(_Lenient):
    format: FormatUpdate | None = None
    transcription: TranscriptionUpdate | None = None
    turn_detection: TurnDetectionUpdate | None = None


class AudioUpdate(_Lenient):
    input: InputUpdate | None = None


class SessionUpdate(_Lenient):
    type: Literal["transcription"]
    audio: AudioUpdate | None = None
    include: list[Literal["item.input_audio_transcription.logprobs"]] | None = None


class SessionUpdateEvent(_Lenient):
    type: Literal["session.update"]
    session: SessionUpdate
    event_id: str | None = None


@dataclass(frozen=True)
class SessionConfig:
    """What ``session.created`` / ``session.updated`` show, and what the live session runs with."""

    id: str = field(default_factory=lambda: f"sess_{secrets.token_hex(11)}")
    expires_at: int = 0
    format: AudioFormat = "audio/pcm"
    model: str = "whisper-1"
    language: str | None = None
    prompt: str | None = None
    turn_detection: VadSettings | None = OPENAI_SERVER_VAD
    logprobs: bool = False

    @classmethod
    def new(cls, model: str | None, max_session_s: float) -> SessionConfig:
        return cls(model=model or "whisper-1", expires_at=int(time.time() + max_session_s))

    def updated(self, update: SessionUpdate) -> SessionConfig:
        config = self
        if "include" in update.model_fields_set:
            config = replace(config, logprobs=LOGPROBS in (update.include or []))
        audio_input = update.audio.input if update.audio else None
        if audio_input is None:
            return config
        if audio_input.format is not None:
            config = replace(config, format=audio_input.format.type)
        if audio_input.transcription is not None:
            asked = audio_input.transcription
            config = replace(
                config,
                model=asked.model or config.model,
                language=asked.language or None if "language" in asked.model_fields_set else config.language,
                prompt=asked.prompt or None if "prompt" in asked.model_fields_set else config.prompt,
            )
        if "turn_detection" in audio_input.model_fields_set:
            detection = audio_input.turn_detection
            if detection is None:
                config = replace(config, turn_detection=None)
            else:
                base = config.turn_detection or OPENAI_SERVER_VAD
                config = replace(
                    config,
                    turn_detection=replace(
                        base,
                        threshold=_given(detection.threshold, base.threshold),
                        prefix_padding_ms=_given(detection.prefix_padding_ms, base.prefix_padding_ms),
                        silence_duration_ms=_given(detection.silence_duration_ms, base.silence_duration_ms),
                    ),
                )
        return config

    def live_config(self) -> LiveConfig:
        return LiveConfig(requested_model(self.model), self.language, self.prompt, self.turn_detection, self.logprobs)

    def to_openai(self) -> dict[str, Any]:
        """The session object (``RealtimeTranscriptionSessionCreateRequest``, with its id and expiry)."""
        audio_format: dict[str, Any] = {"type": self.format}
        if self.format == "audio/pcm":
            audio_format["rate"] = 24000
        detection = self.turn_detection
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": self.id,
            "expires_at": self.expires_at,
            "include": [LOGPROBS] if self.logprobs else [],
            "audio": {
                "input": {
                    "format": audio_format,
                    "transcription": {"model": self.model, "language": self.language, "prompt": self.prompt or ""},
                    "turn_detection": None
                    if detection is None
                    else {
                        "type": "server_vad",
                        "threshold": detection.threshold,
                        "prefix_padding_ms": detection.prefix_padding_ms,
                        "silence_duration_ms": detection.silence_duration_ms,
                    },
                    "noise_reduction": None,
                }
            },
        }


def _given(value: Any, default: Any) -> Any:
    return default if value is None else value
