"""The interfaces every engine implements: a model the pool can load, measure and unload, and on top
of it the ASR interface (a batch of clips in, one transcription per clip out)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.devices import Device
from core.model_files import HubAccess, estimate_weight_bytes
from core.registry import ModelSpec
from core.types import Transcription, TranscribeOptions


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


class ASRStrategy(ModelEngine):
    """Load a model once, transcribe many batches of 16 kHz mono float32 clips, then unload.

    Engines implement ``transcribe_clips``: a batch of independent clips of at most 30 s decoded together.
    Audio of any length is cut into such clips, and stitched back, by the pipeline above.
    """

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
        return None

    @property
    def workers(self) -> int:
        """Calls of ``transcribe_clips`` the engine runs at once (the batcher gives it as many threads)."""
        return 1

    def memory_bytes(self) -> int:
        return estimate_weight_bytes(self.spec.model, self.spec.revision, self.runtime.hub)
