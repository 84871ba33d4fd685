"""The interface every ASR engine implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from stt.devices import Device
from stt.longform import transcribe_long
from stt.model_files import HubAccess, estimate_weight_bytes
from stt.registry import ModelSpec
from stt.results import Transcription, TranscribeOptions


@dataclass(frozen=True)
class RuntimeContext:
    """What every engine needs besides its registry entry."""

    device: Device
    hub: HubAccess
    cpu_threads: int = 0


class ASRStrategy(ABC):
    """Load a model once, transcribe many 16 kHz mono float32 arrays, then unload.

    Engines implement ``transcribe_clips``: a batch of independent clips of at most 30 s decoded together.
    Audio of any length goes through the shared long-form path (``stt.longform``) on top of it.
    """

    batch_size: int = 8
    """Clips one call of ``transcribe`` decodes together."""

    def __init__(self, spec: ModelSpec, runtime: RuntimeContext) -> None:
        self.spec = spec
        self.runtime = runtime

    @property
    @abstractmethod
    def is_loaded(self) -> bool: ...

    @property
    @abstractmethod
    def is_multilingual(self) -> bool:
        """False for English-only checkpoints such as ``*.en``; valid once loaded."""

    @abstractmethod
    def load(self) -> None: ...

    @abstractmethod
    def transcribe_clips(self, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
        """One result per clip (each at most 30 s), timestamps relative to the clip; decoded as one batch."""

    def detect_language(self, audio: np.ndarray) -> str | None:
        """The spoken language of the first 30 s; None lets the engine detect it per clip."""
        return None

    def with_language(self, audio: np.ndarray, options: TranscribeOptions) -> TranscribeOptions:
        """Pin one language for the whole file, as Whisper does, so that all its clips agree."""
        if options.language is None and self.is_multilingual:
            detected = self.detect_language(audio)
            if detected:
                return replace(options, language=detected)
        return options

    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcription:
        """Audio of any length, on its own timeline."""
        return transcribe_long(audio, self.with_language(audio, options), self.transcribe_clips, self.batch_size)

    def memory_bytes(self) -> int:
        """Memory the weights take once loaded; engines that can measure it override this estimate."""
        return estimate_weight_bytes(self.spec.model, self.spec.revision, self.runtime.hub)

    @abstractmethod
    def unload(self) -> None:
        """Drop every reference to weights so their memory can be returned."""
