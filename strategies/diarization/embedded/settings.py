"""The embedded diarizer's tuning knobs, in one frozen value that every part reads."""

from __future__ import annotations

from dataclasses import dataclass

from core.vad import DIARIZATION_VAD, VadSettings


@dataclass(frozen=True)
class EmbeddedSettings:
    """Tuning knobs. The defaults were tuned on the corpus's multi-speaker recordings and on
    LibriSpeech speakers joined back to back."""

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
    heard_threshold: float = 0.25
    """A frame has n speakers where the segmentation windows covering it hear at least n - 1 + this many people on
    average (0.5 would round the mean): a quiet talker or the second voice of an overlap is heard by fewer windows
    than the loud, single voice. 0.25 against 0.5: 1.3 to 2.6 points lower DER on each seed of the simulated
    meetings, +0.1 on the dev recordings."""
    min_redrawn_turn_s: float = 0.1
    """After the redraw by local speakers, a speaker's shorter runs are dropped (a speaker all of whose runs are
    shorter keeps the longest): 10-40 ms turns where the windows' count flips at a speaker change. Turns under
    0.2 s on the dev and simulated sets 585 -> 115, DER within 0.3 points per set; 0.2 scored the same but would
    drop real backchannels."""
    vad: VadSettings = DIARIZATION_VAD
    """Silero's far-field speech (``far_field_vad``): frames are clustered only where it hears speech, and a known
    speaker's voice is embedded from the speech it finds."""
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
    speaker_distance: float = 0.35
    """Estimating the count: average-linkage clustering of the windows stops merging at this cosine distance.
    Measured against the bisection it replaced on the dev recordings, the synthetic joins and 60 simulated
    meetings (docs/diarization.md)."""
    count_sample_windows: int = 2000
    """Estimating the count reads at most this many windows (its memory grows with their square)."""
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
