"""Transcribers on fake engines, as the routes get them: the file and chat transcriber, and the live transcriber
with an energy VAD."""

from __future__ import annotations

import numpy as np

from core.audio_memory import AudioMemoryBudget
from core.model_files import HubAccess
from core.registry import ModelRegistry, ModelSpec
from pipeline.live import LiveLimits, LiveTranscriber
from pipeline.live.turns import WINDOW
from pipeline.pool import ModelPool
from pipeline.transcriber import Transcriber
from strategies.base import RuntimeContext
from tests.fakes import FakeModels, TalkingEngine


def chat_registry() -> ModelRegistry:
    return ModelRegistry(
        [
            ModelSpec(id="asr", engine="transformers", model="x"),
            ModelSpec(id="speech-llm", engine="speech_llm", model="y"),
            ModelSpec(id="speakers", engine="embedded_diarizer", model="z"),
        ]
    )


def chat_transcriber(
    models: FakeModels, max_audio_duration_s: float | None = None, audio_budget: AudioMemoryBudget | None = None
) -> Transcriber:
    """A transcription model "asr" (the default), a chat model "speech-llm" and a diarizer "speakers", all fakes."""
    pool = ModelPool(chat_registry(), RuntimeContext("cpu", HubAccess()), factory=models.engine)
    return Transcriber(
        pool,
        default_model="asr",
        max_audio_duration_s=max_audio_duration_s,
        diarizer_id="speakers",
        audio_budget=audio_budget,
    )


def energy_vad(windows: np.ndarray) -> np.ndarray:
    """Speech probability 1 for a window with sound, 0 for silence (the first window is context)."""
    frames = windows.reshape(-1, WINDOW)[1:]
    return (np.sqrt((frames**2).mean(axis=1)) > 0.01).astype(np.float32)


def talking_pool(models: FakeModels, engine_class: type[TalkingEngine] = TalkingEngine) -> ModelPool:
    """One English model, "talker", on ``engine_class``."""
    registry = ModelRegistry([ModelSpec(id="talker", engine="ctranslate2", model="x", language="en")])
    return ModelPool(registry, RuntimeContext("cpu", HubAccess()), factory=models.factory_for(engine_class))


def live_transcriber(
    models: FakeModels, pool: ModelPool | None = None, audio_budget: AudioMemoryBudget | None = None, **limits
) -> LiveTranscriber:
    """The live transcriber on "talker" (or ``pool``), without pauses between partial transcripts."""
    limits = {"partial_interval_s": 0.0, **limits}
    return LiveTranscriber(
        pool or talking_pool(models), "talker", LiveLimits(**limits), vad=energy_vad, audio_budget=audio_budget
    )
