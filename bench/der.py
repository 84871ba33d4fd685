"""Diarization error rate, scored frame by frame with the best one-to-one speaker mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from core.types import SpeakerTurn

FRAME_S = 0.01


def diarization_error_rate(
    reference: list[SpeakerTurn],
    hypothesis: list[SpeakerTurn],
    collar: float = 0.0,
    frame: float = FRAME_S,
) -> dict[str, float]:
    """Score ``hypothesis`` against ``reference``.

    Returns ``der``, ``missed``, ``false_alarm`` and ``confusion`` as fractions of the scored
    reference speech, the same three in seconds (``missed_s``, ``false_alarm_s``,
    ``confusion_s``) and ``reference_s``, the scored reference speech (a frame with two
    reference speakers counts twice). ``collar`` seconds either side of every reference turn
    boundary are left out of scoring, as in NIST md-eval.
    """
    end = max((t.end for t in [*reference, *hypothesis]), default=0.0)
    n_frames = int(np.ceil(end / frame)) + 1
    ref = _activity(reference, n_frames, frame)
    hyp = _activity(hypothesis, n_frames, frame)
    scored = _scored_frames(reference, n_frames, frame, collar)
    ref, hyp = ref[:, scored], hyp[:, scored]

    n_ref = ref.sum(axis=0)
    n_hyp = hyp.sum(axis=0)
    n_correct = _mapped_overlap(ref, hyp)
    missed = float(np.maximum(n_ref - n_hyp, 0).sum()) * frame
    false_alarm = float(np.maximum(n_hyp - n_ref, 0).sum()) * frame
    confusion = float((np.minimum(n_ref, n_hyp) - n_correct).sum()) * frame
    total = float(n_ref.sum()) * frame

    def rate(seconds: float) -> float:
        if total > 0:
            return seconds / total
        return 0.0 if seconds == 0 else float("inf")

    return {
        "der": rate(missed + false_alarm + confusion),
        "missed": rate(missed),
        "false_alarm": rate(false_alarm),
        "confusion": rate(confusion),
        "missed_s": missed,
        "false_alarm_s": false_alarm,
        "confusion_s": confusion,
        "reference_s": total,
    }


def read_rttm(path: str | Path, file_id: str | None = None) -> list[SpeakerTurn]:
    """The ``SPEAKER`` lines of an RTTM file (only those of ``file_id`` when given), sorted by start."""
    turns = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) < 8 or fields[0] != "SPEAKER" or (file_id is not None and fields[1] != file_id):
            continue
        start, duration = float(fields[3]), float(fields[4])
        turns.append(SpeakerTurn(fields[7], start, start + duration))
    return sorted(turns, key=lambda t: (t.start, t.end))


def _frame_range(start: float, end: float, frame: float, n_frames: int) -> slice:
    return slice(max(int(round(start / frame)), 0), min(int(round(end / frame)), n_frames))


def _activity(turns: list[SpeakerTurn], n_frames: int, frame: float) -> np.ndarray:
    """(speakers, frames) booleans: who is speaking in each frame."""
    speakers = sorted({t.speaker for t in turns})
    index = {name: i for i, name in enumerate(speakers)}
    active = np.zeros((len(speakers), n_frames), dtype=bool)
    for turn in turns:
        active[index[turn.speaker], _frame_range(turn.start, turn.end, frame, n_frames)] = True
    return active


def _scored_frames(reference: list[SpeakerTurn], n_frames: int, frame: float, collar: float) -> np.ndarray:
    scored = np.ones(n_frames, dtype=bool)
    if collar > 0:
        for turn in reference:
            for boundary in (turn.start, turn.end):
                scored[_frame_range(boundary - collar, boundary + collar, frame, n_frames)] = False
    return scored


def _mapped_overlap(ref: np.ndarray, hyp: np.ndarray) -> np.ndarray:
    """Per frame, how many reference speakers are matched by their mapped hypothesis speaker."""
    if ref.shape[0] == 0 or hyp.shape[0] == 0:
        return np.zeros(ref.shape[1], dtype=np.int64)
    overlap = ref.astype(np.int64) @ hyp.T.astype(np.int64)
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    return (ref[rows] & hyp[cols]).sum(axis=0)
