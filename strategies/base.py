"""The interfaces every engine implements: a model the pool can load, measure and unload, and on top
of it the ASR interface (a batch of clips in, one transcription per clip out) and the chat interface (a
conversation of text and audio in, the assistant's next message out)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from core.devices import Device
from core.model_files import HubAccess, estimate_weight_bytes
from core.registry import ModelSpec
from core.types import Transcription, TranscribeOptions


DEFAULT_BATCH_SIZE = 8
"""Clips per engine call unless an engine or the operator says otherwise (a GPU's batch)."""

@dataclass(frozen=True)
class RuntimeContext:
    """What every engine needs besides its registry entry."""

    device: Device
    hub: HubAccess
    cpu_threads: int = 0
    """Intra-op threads per engine worker; 0: the cores shared out among the workers."""
    cpu_cores: int = 1
    """Cores this process may run on."""
    engine_workers: int = 0
    """Engine workers per model (calls it runs at once); 0: the engine's own best default."""


class ModelEngine(ABC):
    """A model the pool holds: loaded once, measured against the memory budget, unloaded when evicted."""

    @property
    @abstractmethod
    def is_loaded(self) -> bool: ...

    @abstractmethod
    def load(self) -> None: ...

    @abstractmethod
    def unload(self) -> None:
        """Drop every reference to weights so their memory can be returned."""

    @abstractmethod
    def memory_bytes(self) -> int:
        """Memory the weights take once loaded (an estimate before the load)."""


class ASREngine(ModelEngine):
    """Load a model once, transcribe many batches of 16 kHz mono float32 clips, then unload.

    Engines implement ``transcribe_clips``: a batch of independent clips of at most 30 s decoded together.
    Audio of any length is cut into such clips, and stitched back, by the pipeline above.
    """

    takes_keywords: ClassVar[bool] = False
    """Whether ``TranscribeOptions.keywords`` reach the decoder (an engine that cannot honour them refuses them)."""
    returns_logprobs: ClassVar[bool] = False
    """Whether the engine fills ``Segment.logprobs`` when ``TranscribeOptions.logprobs`` asks for them."""

    def __init__(self, spec: ModelSpec, runtime: RuntimeContext) -> None:
        self.spec = spec
        self.runtime = runtime

    @property
    @abstractmethod
    def is_multilingual(self) -> bool:
        """False for English-only checkpoints such as ``*.en``; valid once loaded."""

    @abstractmethod
    def transcribe_clips(self, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
        """One result per clip (each at most 30 s), timestamps relative to the clip; decoded as one batch."""

    def detect_language(self, audio: np.ndarray) -> str | None:
        """The spoken language of the first 30 s; None lets the engine detect it per clip."""
        return self.detect_language_probability(audio)[0]

    def detect_language_probability(self, audio: np.ndarray) -> tuple[str | None, float | None]:
        """The spoken language of the first 30 s and the engine's probability for it (None: it gives none).
        Engines that detect languages implement this one."""
        return None, None

    @property
    def workers(self) -> int:
        """Calls of ``transcribe_clips`` the engine runs at once (the batcher gives it as many threads)."""
        return 1

    @property
    def batch_size(self) -> int:
        """Most clips one ``transcribe_clips`` call should take, unless the operator sets it."""
        return DEFAULT_BATCH_SIZE

    def memory_bytes(self) -> int:
        return estimate_weight_bytes(self.spec.model, self.spec.revision, self.runtime.hub)


# ---------------------------------------------------------------------------------------- chat (speech-LLM) engines


@dataclass(frozen=True)
class ChatTurn:
    """One message of a conversation: its role and its parts in order, text or 16 kHz mono float32 audio."""

    role: str
    """``system``, ``user`` or ``assistant``."""
    parts: tuple[str | np.ndarray, ...]


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int
    temperature: float | None = None
    """None: the model's own generation config; 0: greedy."""
    top_p: float | None = None
    seed: int | None = None


@dataclass(frozen=True)
class ChatReply:
    text: str
    finish_reason: str
    """``stop`` (the model ended its answer, or was stopped) or ``length`` (``max_new_tokens`` reached)."""
    prompt_tokens: int
    completion_tokens: int


class ChatEngine(ModelEngine):
    """A model that reads a conversation whose messages hold text and audio and writes the next message.

    Loaded once, measured and unloaded by the pool like any model; ``generate`` may be called from several
    request threads at once (the engine serialises what must be)."""

    def __init__(self, spec: ModelSpec, runtime: RuntimeContext) -> None:
        self.spec = spec
        self.runtime = runtime

    @abstractmethod
    def generate(
        self,
        turns: Sequence[ChatTurn],
        options: GenerationOptions,
        should_stop: Callable[[], bool] = lambda: False,
        on_text: Callable[[str], None] | None = None,
    ) -> ChatReply:
        """The assistant's next message. ``on_text`` receives the text as it is generated (the deltas add up to
        ``ChatReply.text``); generation ends early, with what it has, once ``should_stop()`` is true."""

    def memory_bytes(self) -> int:
        return estimate_weight_bytes(self.spec.model, self.spec.revision, self.runtime.hub)
