"""Overlapped speech around speaker changes.

Where two people talk at once, the windows covering those frames look like both speakers, so the
frame's similarity to the second speaker comes close to its similarity to the first. Most overlap
in meetings is at turn changes (the next speaker starts before the last one stops, or a short
backchannel), so only frames next to a change of speaker are considered: walking out from the
change, a frame keeps both speakers while the other speaker's score stays within ``margin`` of its
own speaker's, up to ``max_overlap_s``.
"""

from __future__ import annotations

import numpy as np


def overlap_runs(
    frame_labels: np.ndarray,
    speech: np.ndarray,
    scores: np.ndarray,
    *,
    margin: float,
    max_frames: int,
    min_frames: int,
) -> list[tuple[int, int, int]]:
    """(second speaker, first frame, end frame) runs of overlapped speech.

    ``frame_labels``: the speaker of each frame; ``speech``: which frames are speech; ``scores``:
    (frames, speakers) similarities of each frame to each speaker.
    """
    n = len(frame_labels)
    changes = np.flatnonzero((frame_labels[1:] != frame_labels[:-1]) & speech[1:] & speech[:-1]) + 1
    runs = []
    for t in changes.tolist():
        before, after = int(frame_labels[t - 1]), int(frame_labels[t])
        # Before the change: does ``after`` already speak under ``before``? After it: does ``before`` go on?
        start = t
        while start > max(0, t - max_frames) and speech[start - 1] and frame_labels[start - 1] == before:
            if scores[start - 1, before] - scores[start - 1, after] > margin:
                break
            start -= 1
        if t - start >= min_frames:
            runs.append((after, start, t))
        end = t
        while end < min(n, t + max_frames) and speech[end] and frame_labels[end] == after:
            if scores[end, after] - scores[end, before] > margin:
                break
            end += 1
        if end - t >= min_frames:
            runs.append((before, t, end))
    return runs
