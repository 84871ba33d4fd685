"""Time on the diarizer's 10 ms frame grid: spans to frame masks and back, the windows that are embedded, and frame
labels to speaker turns."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..base import SpeakerTurn

FRAME_S = 0.01
"""The grid every part shares: the encoder's mel hop and the step of the segmentation's averaged output."""

Span = tuple[float, float]
Run = tuple[int, int, int]
"""(label, first frame, end frame)."""


def frame_mask(spans: list[Span], n_frames: int) -> np.ndarray:
    """(n_frames,) bool: the 10 ms frames inside ``spans``."""
    mask = np.zeros(n_frames, dtype=bool)
    for start, end in spans:
        mask[int(round(start / FRAME_S)) : int(round(end / FRAME_S))] = True
    return mask


def frame_runs(mask: np.ndarray, min_s: float) -> list[Span]:
    """Runs of True 10 ms frames as (start, end) seconds, those at least ``min_s`` long."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    min_frames = int(round(min_s / FRAME_S))
    return [
        (round(start * FRAME_S, 3), round(end * FRAME_S, 3))
        for start, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
        if end - start >= min_frames
    ]


def windows_in(regions: list[Span], window_s: float, hop_s: float) -> list[Span]:
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


def window_batches(
    features: np.ndarray, windows: list[Span], batch_size: int
) -> Iterator[tuple[list[int], np.ndarray]]:
    """Batches of the (frames, dim) ``features`` inside ``windows``: (window indices, (batch, length, dim) array),
    windows of one length together (a window past the end is moved back inside)."""
    spans = []
    for start, end in windows:
        length = min(max(int(round((end - start) / FRAME_S)), 1), len(features))
        spans.append((min(int(round(start / FRAME_S)), len(features) - length), length))
    by_length: dict[int, list[int]] = {}
    for i, (_, length) in enumerate(spans):
        by_length.setdefault(length, []).append(i)
    for length, indices in by_length.items():
        for chunk in (indices[i : i + batch_size] for i in range(0, len(indices), batch_size)):
            yield chunk, np.stack([features[spans[i][0] : spans[i][0] + length] for i in chunk])


def turns_from_frames(
    regions: list[Span],
    windows: list[Span],
    labels: np.ndarray,
    min_turn_s: float,
    merge_gap_s: float,
    frame_labels: np.ndarray | None = None,
) -> list[SpeakerTurn]:
    """Per 10 ms frame, the speaker most covering windows voted for (or ``frame_labels``); runs of frames become
    turns (a run shorter than ``min_turn_s`` goes to its neighbour), and turns of one speaker less than
    ``merge_gap_s`` apart are joined. Speakers are named by label."""
    if frame_labels is None:
        n_frames = int(np.ceil(regions[-1][1] / FRAME_S)) + 1
        n_speakers = int(labels.max()) + 1
        votes = np.zeros((n_speakers, n_frames))
        for (start, end), label in zip(windows, labels, strict=True):
            votes[label, int(round(start / FRAME_S)) : int(round(end / FRAME_S))] += 1
        frame_labels = np.argmax(votes, axis=0)
    min_run = int(round(min_turn_s / FRAME_S))
    pieces: list[tuple[int, float, float]] = []
    for start, end in regions:
        a, b = int(round(start / FRAME_S)), int(round(end / FRAME_S))
        for label, ra, rb in smooth_runs(frame_labels[a:b], min_run):
            pieces.append((label, round((a + ra) * FRAME_S, 3), round((a + rb) * FRAME_S, 3)))
    turns: list[SpeakerTurn] = []
    for label, start, end in pieces:
        name = str(label)
        if turns and turns[-1].speaker == name and start - turns[-1].end < merge_gap_s:
            turns[-1] = SpeakerTurn(name, turns[-1].start, end)
        else:
            turns.append(SpeakerTurn(name, start, end))
    return turns


def smooth_runs(labels: np.ndarray, min_run: int) -> list[Run]:
    """(label, start, end) runs of ``labels``; a run shorter than ``min_run`` goes to its longer neighbour."""
    runs = coalesce([(label, i, i + 1) for i, label in enumerate(labels.tolist())])
    while len(runs) > 1:
        i = min(range(len(runs)), key=lambda j: runs[j][2] - runs[j][1])
        if runs[i][2] - runs[i][1] >= min_run:
            break
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(runs)]
        j = max(neighbours, key=lambda j: runs[j][2] - runs[j][1])
        runs[i] = (runs[j][0], runs[i][1], runs[i][2])
        runs = coalesce(runs)
    return runs


def coalesce(runs: list[Run]) -> list[Run]:
    """Neighbouring runs of one label joined."""
    merged: list[Run] = []
    for label, start, end in runs:
        if merged and merged[-1][0] == label:
            merged[-1] = (label, merged[-1][1], end)
        else:
            merged.append((label, start, end))
    return merged
