"""The embedded diarizer with the speech detectors it had before pyannote's segmentation model, kept to compare
(``bench.diarization_der --detector``). Both give every frame one speaker (no overlaps) and no turn is redrawn:

- ``far_field``: Silero tuned for far-field audio (``far_field_vad`` with ``DIARIZATION_VAD``), all its speech
  diarized; pauses of up to 200 ms are the regions embedded.
- ``asr``: the first detector, Silero's own cutter (``core.vad.speech_spans``) with ``ASR_STYLE_VAD``, stretches
  under ``MIN_REGION_S`` dropped; it misses much of a meeting's far-field speech.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np

from core.audio import SAMPLE_RATE
from core.types import SpeakerTurn
from core.vad import LONG_FORM_VAD, speech_spans
from strategies.diarization.base import Diarizer, as_mono, check_speaker_bounds, relabel_in_order
from strategies.diarization.embedded import EmbeddedDiarizer, Speech
from strategies.diarization.embedded.far_field_vad import far_field_speech_regions

Detector = Literal["far_field", "asr"]
DETECTORS: tuple[Detector, ...] = ("far_field", "asr")

ASR_STYLE_VAD = replace(LONG_FORM_VAD, prefix_padding_ms=30, silence_duration_ms=300)
"""The ASR detector's cutting: the long-form clip splitter's threshold, longer pauses, little padding."""
MIN_REGION_S = 0.2
"""The ASR detector drops shorter stretches of speech."""

Span = tuple[float, float]


def asr_speech_regions(audio: np.ndarray) -> list[Span]:
    """Speech regions in seconds, Silero's own cutter with ``ASR_STYLE_VAD``."""
    regions = [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in speech_spans(audio, ASR_STYLE_VAD)]
    return [(start, end) for start, end in regions if end - start >= MIN_REGION_S]


class OlderDetectorDiarizer(Diarizer):
    """``diarizer``'s encoder, clustering and resegmentation on the speech an older ``detector`` finds."""

    def __init__(self, diarizer: EmbeddedDiarizer, detector: Detector) -> None:
        self.diarizer = diarizer
        self.detector = detector

    @property
    def is_loaded(self) -> bool:
        return self.diarizer.is_loaded

    def load(self) -> None:
        self.diarizer.load()

    def unload(self) -> None:
        self.diarizer.unload()

    def memory_bytes(self) -> int:
        return self.diarizer.memory_bytes()

    def diarize(
        self,
        audio: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> list[SpeakerTurn]:
        check_speaker_bounds(num_speakers, min_speakers, max_speakers)
        audio = as_mono(audio)
        if self.detector == "far_field":
            regions, tighter = far_field_speech_regions(audio, self.diarizer.settings.vad)
        else:
            regions = tighter = asr_speech_regions(audio)
        speech = Speech(regions, tighter, tighter)
        return relabel_in_order(self.diarizer.clustered_turns(audio, speech, num_speakers, min_speakers, max_speakers))
