"""Stand-ins for testing without weights or a GPU: engines (ASR and diarization) for the model lifecycle, and
``torch.cuda``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np

from core.audio import SAMPLE_RATE
from core.registry import ModelSpec
from core.types import Segment, SpeakerTurn, TokenLogprob, Transcription, TranscribeOptions
from strategies.base import ASRStrategy
from strategies.diarization.base import Diarizer


class FakeStrategy(ASRStrategy):
    takes_keywords = True
    returns_logprobs = True
    loads: list[str] = []
    unloads: list[str] = []
    fail_with: Exception | None = None
    load_seconds = 0.0
    multilingual = True
    size_bytes = 100
    detected_language: str | None = None
    detected_probability: float | None = None
    gate: threading.Event | None = None
    """When set, transcribe() waits for it: a request that stays in flight."""

    def __init__(self, spec, runtime) -> None:
        super().__init__(spec, runtime)
        self._loaded = False
        self.calls: list[TranscribeOptions] = []
        self.batches: list[int] = []
        """Clips per ``transcribe_clips`` call."""
        self._lock = threading.Lock()

    @property
    def is_loaded(self) -> bool:
        return self._loaded

    @property
    def is_multilingual(self) -> bool:
        return self.multilingual

    def load(self) -> None:
        time.sleep(self.load_seconds)
        FakeStrategy.loads.append(self.spec.id)
        if FakeStrategy.fail_with is not None:
            raise FakeStrategy.fail_with
        self._loaded = True

    def memory_bytes(self) -> int:
        return self.size_bytes

    def detect_language_probability(self, audio: np.ndarray) -> tuple[str | None, float | None]:
        return FakeStrategy.detected_language, FakeStrategy.detected_probability

    def transcribe_clips(self, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
        self.calls.append(options)
        self.batches.append(len(clips))
        if FakeStrategy.gate is not None:
            assert FakeStrategy.gate.wait(10), "test gate never opened"
        return [self._heard(len(clip) / SAMPLE_RATE, options) for clip in clips]

    def _heard(self, duration: float, options: TranscribeOptions) -> Transcription:
        text = f"{self.spec.id} heard {duration:.1f}s"
        segment = Segment(id=0, start=0.0, end=duration, text=text)
        if options.logprobs:  # one "token" a word, each less likely than the one before
            words = [f" {word}" for word in text.split()]
            segment.logprobs = [
                TokenLogprob(token=word, bytes=list(word.encode()), logprob=-0.1 * (i + 1)) for i, word in enumerate(words)
            ]
        return Transcription(text=text, language=options.language, duration=duration, segments=[segment])

    def unload(self) -> None:
        if self._loaded:
            FakeStrategy.unloads.append(self.spec.id)
        self._loaded = False


class FakeDiarizer(Diarizer):
    """Two speakers, two seconds each, whatever the audio."""

    loads = 0
    fail = False
    size_bytes = 100

    def __init__(self, spec=None, runtime=None) -> None:
        self._loaded = False

    @property
    def is_loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        FakeDiarizer.loads += 1
        if FakeDiarizer.fail:
            raise RuntimeError("pyannote/speaker-diarization-3.1 is not in the Hugging Face cache")
        self._loaded = True

    def memory_bytes(self) -> int:
        return self.size_bytes

    def diarize(self, audio, *, num_speakers=None, min_speakers=None, max_speakers=None):
        return [SpeakerTurn("SPEAKER_00", 0.0, 2.0), SpeakerTurn("SPEAKER_01", 2.0, 4.0)]

    same_voice_similarity = 0.9

    def embed_voice(self, audio):
        """The clip's spectrum in 100 Hz bands up to 1.6 kHz, unit length: a tone's pitch is its voice."""
        bands = np.abs(np.fft.rfft(audio, n=SAMPLE_RATE))[:1600].reshape(16, 100).sum(axis=1)
        return bands / max(float(np.linalg.norm(bands)), 1e-8)

    def unload(self) -> None:
        self._loaded = False


def fake_engine(spec: ModelSpec, runtime) -> ASRStrategy | Diarizer:
    """The pool's factory for tests: fakes of both kinds of model."""
    return FakeDiarizer(spec, runtime) if spec.kind == "diarization" else FakeStrategy(spec, runtime)

GiB = 2**30


class FakeCuda:
    """``torch.cuda`` with CUDA initialised, for GPU paths on a CPU: free memory is what is not ``used`` (by
    models that load) or taken by ``other_processes``; cache emptyings are counted."""

    def __init__(self, total: int = 16 * GiB) -> None:
        self.total = total
        self.used = 0
        self.other_processes = 0
        self.emptied = 0

    @property
    def free(self) -> int:
        return self.total - self.used - self.other_processes

    @free.setter
    def free(self, value: int) -> None:
        self.other_processes = self.total - self.used - value

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return True

    def mem_get_info(self) -> tuple[int, int]:
        return self.free, self.total

    def empty_cache(self) -> None:
        self.emptied += 1

    def ipc_collect(self) -> None:
        pass


def fresh_fake_strategy() -> Iterator[None]:
    """For an autouse fixture: FakeStrategy's class-wide knobs at their defaults, and a held gate released."""
    FakeStrategy.loads, FakeStrategy.unloads = [], []
    FakeStrategy.fail_with, FakeStrategy.gate = None, None
    FakeStrategy.load_seconds, FakeStrategy.size_bytes = 0.0, 100
    yield
    if FakeStrategy.gate is not None:
        FakeStrategy.gate.set()
        FakeStrategy.gate = None
