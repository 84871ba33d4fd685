"""The interface every ASR engine implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from stt.devices import Device
from stt.model_files import HubAccess, estimate_weight_bytes
from stt.registry import ModelSpec
from stt.results import Segment, Transcription, TranscribeOptions


@dataclass(frozen=True)
class RuntimeContext:
    """What every engine needs besides its registry entry."""

    device: Device
    hub: HubAccess
    cpu_threads: int = 0


class ASRStrategy(ABC):
    """Load a model once, transcribe many 16 kHz mono float32 arrays, then unload."""

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
    def transcribe(self, audio: np.ndarray, options: TranscribeOptions) -> Transcription: ...

    def memory_bytes(self) -> int:
        """Memory the weights take once loaded; engines that can measure it override this estimate."""
        return estimate_weight_bytes(self.spec.model, self.spec.revision, self.runtime.hub)

    def stream(self, audio: np.ndarray, options: TranscribeOptions) -> Iterator[Segment]:
        """Segments as they are decoded; engines that decode incrementally override this."""
        yield from self.transcribe(audio, options).segments

    @abstractmethod
    def unload(self) -> None:
        """Drop every reference to weights so their memory can be returned."""
