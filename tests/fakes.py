"""Stand-ins for testing without weights or a GPU: engines of every kind (ASR, chat, diarization) for the model
lifecycle, whose knobs and records live in one ``FakeModels`` per test, and ``torch.cuda``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.audio import SAMPLE_RATE
from core.registry import ModelSpec
from core.types import Segment, SpeakerTurn, TokenLogprob, Transcription, TranscribeOptions
from strategies.base import ASREngine, ChatReply, ChatEngine, ChatTurn, GenerationOptions, ModelEngine
from strategies.diarization.base import Diarizer


@dataclass
class FakeModels:
    """What the fake engines of one test share: the knobs the test turns, the records it reads, and the pool's
    factory that hands both to every engine it builds. The ``fake_models`` fixture makes a new one for each test."""

    # ASR engines (FakeASREngine and its subclasses)
    fail_with: Exception | None = None
    """Raised by every load."""
    load_seconds: float = 0.0
    multilingual: bool = True
    detected_language: str | None = None
    detected_probability: float | None = None
    gate: threading.Event | None = None
    """When set, transcription waits for it: a request that stays in flight."""
    loads: list[str] = field(default_factory=list)
    unloads: list[str] = field(default_factory=list)

    # diarizers
    diarizer_fails: bool = False
    diarizer_loads: int = 0

    # chat engines
    chat_fail_after_words: int | None = None
    chat_gate: threading.Event | None = None
    """When set, a chat engine waits for it after its first word."""
    chat_engines: list[FakeChatEngine] = field(default_factory=list)

    def engine(self, spec: ModelSpec, runtime) -> ModelEngine:
        """The pool's factory: a fake of the model's kind."""
        if spec.kind == "diarization":
            return FakeDiarizer(spec, runtime, self)
        if spec.kind == "chat":
            return FakeChatEngine(spec, runtime, self)
        return FakeASREngine(spec, runtime, self)

    def factory_for(self, engine_class: type) -> Callable[[ModelSpec, object], ModelEngine]:
        """A pool factory that builds ``engine_class`` (a fake or a subclass of one) on these models."""
        return lambda spec, runtime: engine_class(spec, runtime, self)

    def release(self) -> None:
        """Opens the gates a test left closed, so that no engine thread waits past the test."""
        for gate in (self.gate, self.chat_gate):
            if gate is not None:
                gate.set()


class FakeASREngine(ASREngine):
    """Hears "<model id> heard N.Ns" in each clip."""

    takes_keywords = True
    returns_logprobs = True

    def __init__(self, spec, runtime, models: FakeModels) -> None:
        super().__init__(spec, runtime)
        self.models = models
        self.size_bytes = 100
        self._loaded = False
        self.calls: list[TranscribeOptions] = []
        self.batches: list[int] = []
        """Clips per ``transcribe_clips`` call."""

    @property
    def is_loaded(self) -> bool:
        return self._loaded

    @property
    def is_multilingual(self) -> bool:
        return self.models.multilingual

    def load(self) -> None:
        time.sleep(self.models.load_seconds)
        self.models.loads.append(self.spec.id)
        if self.models.fail_with is not None:
            raise self.models.fail_with
        self._loaded = True

    def memory_bytes(self) -> int:
        return self.size_bytes

    def detect_language_probability(self, audio: np.ndarray) -> tuple[str | None, float | None]:
        return self.models.detected_language, self.models.detected_probability

    def transcribe_clips(self, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
        self.calls.append(options)
        self.batches.append(len(clips))
        self.wait_for_gate()
        return [self._heard(len(clip) / SAMPLE_RATE, options) for clip in clips]

    def wait_for_gate(self) -> None:
        if self.models.gate is not None:
            assert self.models.gate.wait(10), "test gate never opened"

    def _heard(self, duration: float, options: TranscribeOptions) -> Transcription:
        text = f"{self.spec.id} heard {duration:.1f}s"
        segment = Segment(id=0, start=0.0, end=duration, text=text)
        if options.logprobs:  # one "token" a word, each less likely than the one before
            words = [f" {word}" for word in text.split()]
            segment.logprobs = [
                TokenLogprob(token=word, bytes=list(word.encode()), logprob=-0.1 * (i + 1))
                for i, word in enumerate(words)
            ]
        return Transcription(text=text, language=options.language, duration=duration, segments=[segment])

    def unload(self) -> None:
        if self._loaded:
            self.models.unloads.append(self.spec.id)
        self._loaded = False


def word_tokens(words: list[str]) -> list[TokenLogprob]:
    """Whisper-like tokens for ``words``: each with its leading space, the longer ones in two pieces; the i-th word's
    tokens have log-probability -i/100, so a test can tell whose they are."""
    tokens = []
    for i, word in enumerate(words):
        pieces = [" " + word[:2], word[2:]] if len(word) > 4 else [" " + word]
        tokens += [TokenLogprob(token=p, bytes=list(p.encode()), logprob=-i / 100) for p in pieces]
    return tokens


WORDS = "the quick brown fox jumps over the lazy dog while seven wizards quietly judge boxing matches".split()
WORDS_PER_SECOND = 3


class TalkingEngine(FakeASREngine):
    """Hears WORDS_PER_SECOND words of WORDS per second of sound: a longer clip's transcript extends a shorter
    one's, as a live turn's partial transcripts do."""

    def transcribe_clips(self, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
        self.calls.append(options)
        self.batches.append(len(clips))
        self.wait_for_gate()
        results = []
        for clip in clips:
            frames = clip[: len(clip) // 160 * 160].reshape(-1, 160)
            voiced = float((np.sqrt((frames**2).mean(axis=1)) > 0.01).sum()) / 100
            text = " ".join(WORDS[: int(voiced * WORDS_PER_SECOND + 0.01)])
            segments = [Segment(id=0, start=0.0, end=len(clip) / SAMPLE_RATE, text=text)] if text else []
            if options.logprobs and segments:
                segments[0].logprobs = word_tokens(text.split())
            results.append(Transcription(text=text, language="en", duration=len(clip) / SAMPLE_RATE, segments=segments))
        return results


class FakeDiarizer(Diarizer):
    """Two speakers, two seconds each, whatever the audio."""

    same_voice_similarity = 0.9

    def __init__(self, spec, runtime, models: FakeModels) -> None:
        self.models = models
        self.size_bytes = 100
        self._loaded = False

    @property
    def is_loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        self.models.diarizer_loads += 1
        if self.models.diarizer_fails:
            raise RuntimeError("pyannote/speaker-diarization-3.1 is not in the Hugging Face cache")
        self._loaded = True

    def memory_bytes(self) -> int:
        return self.size_bytes

    def diarize(self, audio, *, num_speakers=None, min_speakers=None, max_speakers=None):
        return [SpeakerTurn("SPEAKER_00", 0.0, 2.0), SpeakerTurn("SPEAKER_01", 2.0, 4.0)]

    def embed_voice(self, audio):
        """The clip's spectrum in 100 Hz bands up to 1.6 kHz, unit length: a tone's pitch is its voice."""
        bands = np.abs(np.fft.rfft(audio, n=SAMPLE_RATE))[:1600].reshape(16, 100).sum(axis=1)
        return bands / max(float(np.linalg.norm(bands)), 1e-8)

    def unload(self) -> None:
        self._loaded = False


class FakeChatEngine(ChatEngine):
    """Answers, word by word, what it was given: each turn's role, seconds of audio and text."""

    def __init__(self, spec, runtime, models: FakeModels) -> None:
        super().__init__(spec, runtime)
        self.models = models
        self._loaded = False
        self.calls: list[tuple[list[ChatTurn], GenerationOptions]] = []
        self.stopped_early = False
        models.chat_engines.append(self)

    @property
    def is_loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        self._loaded = True

    def unload(self) -> None:
        self._loaded = False

    def memory_bytes(self) -> int:
        return 100

    @staticmethod
    def describe(turns: Sequence[ChatTurn]) -> list[str]:
        words = []
        for turn in turns:
            for part in turn.parts:
                heard = part if isinstance(part, str) else f"{len(part) / SAMPLE_RATE:.1f}s"
                words.append(f"{turn.role}:{heard}")
        return words

    def generate(
        self,
        turns: Sequence[ChatTurn],
        options: GenerationOptions,
        should_stop: Callable[[], bool] = lambda: False,
        on_text: Callable[[str], None] | None = None,
    ) -> ChatReply:
        self.calls.append((list(turns), options))
        words = self.describe(turns)[: options.max_new_tokens]
        written: list[str] = []
        models = self.models
        for i, word in enumerate(words):
            if should_stop():
                self.stopped_early = True
                break
            if models.chat_fail_after_words is not None and i >= models.chat_fail_after_words:
                raise RuntimeError("the fake model broke")
            if models.chat_gate is not None and i == 1:
                assert models.chat_gate.wait(10)
            piece = word if i == 0 else " " + word
            written.append(piece)
            if on_text is not None:
                on_text(piece)
        complete = len(words) == len(self.describe(turns))
        reason = "stop" if complete or self.stopped_early else "length"
        return ChatReply("".join(written), reason, prompt_tokens=len(turns) * 10, completion_tokens=len(written))


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
