"""Resegmentation: frame-level speaker posteriors from sliding-window embeddings, smoothed with
Viterbi decoding of a simple HMM (one state per speaker, a fixed cost to change speaker), in the
spirit of VBx's resegmentation."""

from __future__ import annotations

import numpy as np

from .clustering import centroids, unit_rows
from .frames import FRAME_S, Span
from .settings import EmbeddedSettings


def frame_speakers(
    regions: list[Span],
    windows: list[Span],
    embeddings: np.ndarray,
    labels: np.ndarray,
    settings: EmbeddedSettings,
) -> np.ndarray:
    """A speaker per 10 ms frame (Viterbi over the frame posteriors, region by region), from the windows'
    embeddings and their clustered ``labels``."""
    k = int(labels.max()) + 1
    x = unit_rows(embeddings)
    n_frames = int(np.ceil(regions[-1][1] / FRAME_S)) + 1
    centres = np.array([min(int(round((a + b) / 2 / FRAME_S)), n_frames - 1) for a, b in windows])
    for iteration in range(max(settings.resegment_iterations, 1)):
        if iteration:  # centroids again from the windows' resegmented speakers
            labels = frame_labels[centres]
        scores, _ = frame_scores(windows, x @ centroids(x, labels, k).T, n_frames, FRAME_S)
        frame_labels = np.zeros(n_frames, dtype=int)
        for start, end in regions:
            a, b = int(round(start / FRAME_S)), min(int(round(end / FRAME_S)), n_frames)
            posteriors = log_posteriors(np.nan_to_num(scores[a:b]), settings.posterior_sharpness)
            frame_labels[a:b] = viterbi(posteriors, settings.switch_cost)
    return frame_labels


def frame_scores(
    windows: list[Span], similarities: np.ndarray, n_frames: int, frame_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """(frames, speakers) mean similarity of the windows covering each frame, and how many cover it.

    ``similarities`` is (windows, speakers): each window's cosine similarity to each speaker centroid.
    """
    k = similarities.shape[1]
    sums = np.zeros((n_frames + 1, k))
    counts = np.zeros(n_frames + 1)
    for (start, end), row in zip(windows, similarities, strict=True):
        a = min(max(int(round(start / frame_s)), 0), n_frames)
        b = min(max(int(round(end / frame_s)), a + 1), n_frames)
        sums[a] += row
        sums[b] -= row
        counts[a] += 1
        counts[b] -= 1
    sums, counts = np.cumsum(sums, axis=0)[:n_frames], np.cumsum(counts)[:n_frames]
    return sums / np.maximum(counts, 1)[:, None], counts


def log_posteriors(scores: np.ndarray, sharpness: float) -> np.ndarray:
    """Softmax over speakers of ``sharpness`` x similarity, as log-probabilities."""
    z = scores * sharpness
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def viterbi(log_probs: np.ndarray, switch_cost: float) -> np.ndarray:
    """The most likely speaker per frame: ``log_probs`` (frames, speakers) plus ``-switch_cost``
    for every change of speaker."""
    n, k = log_probs.shape
    if n == 0:
        return np.zeros(0, dtype=int)
    if k == 1:
        return np.zeros(n, dtype=int)
    back = np.zeros((n, k), dtype=np.int32)
    score = log_probs[0].copy()
    for t in range(1, n):
        best = int(np.argmax(score))
        switch = score[best] - switch_cost
        stay_wins = score >= switch
        back[t] = np.where(stay_wins, np.arange(k), best)
        score = np.where(stay_wins, score, switch) + log_probs[t]
    path = np.empty(n, dtype=int)
    path[-1] = int(np.argmax(score))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path
