"""The recording's speakers, frame by frame, from the segmentation's local speakers and the clustered labels.

Clustering (speaker embeddings, then Viterbi resegmentation) gives each speech frame one speaker of the
recording. The segmentation model sees more within a window: where one person stops and the next starts, and
where two talk at once, but its speakers are local to the window. Window by window:

- a window where the model hears two or more local speakers, each alone for at least ``min_alone_frames``, pairs
  them with recording speakers, a different one each (two local speakers of one window are two people), the
  pairing that keeps the most solo frames with the speaker they were clustered as; each lends its speaker its
  frames, overlapped ones included;
- a window where it hears one (far-field audio, where it often cannot tell two voices apart) has nothing to add
  on who speaks: its speech frames keep their clustered speakers.

Each frame then gets as many speakers as the covering windows heard on average (n from a mean of
n - 1 + ``heard_threshold``), those whose frames the most windows lent it.
"""

from __future__ import annotations

import numpy as np

from ..base import SpeakerTurn
from .frames import FRAME_S
from .segmentation import LocalWindow, Segmentation
from .settings import EmbeddedSettings

NO_SPEAKER = -1


def with_local_speakers(
    turns: list[SpeakerTurn], segmentation: Segmentation, settings: EmbeddedSettings, at_least: int = 0
) -> list[SpeakerTurn]:
    """``turns`` (speakers named by cluster index) redrawn with the segmentation's local speakers: sharper turn
    changes, and overlapped frames with both speakers. A count asked for (``at_least``) is kept: a clustered
    speaker the redraw would leave without a frame keeps its clustered frames."""
    if not turns:
        return turns
    frame_labels = np.full(len(segmentation.speech), NO_SPEAKER, dtype=int)
    for turn in turns:
        frame_labels[int(round(turn.start / FRAME_S)) : int(round(turn.end / FRAME_S))] = int(turn.speaker)
    n_speakers = int(frame_labels.max()) + 1
    activity = speaker_activity(
        segmentation.windows,
        frame_labels,
        n_speakers,
        int(round(settings.min_local_speaker_s / FRAME_S)),
        settings.heard_threshold,
    )
    if at_least and np.count_nonzero(activity.any(axis=0)) < min(at_least, n_speakers):
        for speaker in np.flatnonzero(~activity.any(axis=0)):
            own = frame_labels == speaker
            activity[own] = False
            activity[own, speaker] = True
    activity = without_blips(activity, int(round(settings.min_redrawn_turn_s / FRAME_S)))
    activity = fill_pauses(activity, int(round(settings.merge_gap_s / FRAME_S)))
    return [
        SpeakerTurn(str(speaker), round(start * FRAME_S, 3), round(end * FRAME_S, 3))
        for speaker, start, end in activity_runs(activity)
    ]


def speaker_activity(
    windows: list[LocalWindow],
    frame_labels: np.ndarray,
    n_speakers: int,
    min_alone_frames: int,
    heard_threshold: float,
) -> np.ndarray:
    """(frames, n_speakers) bool activity. ``frame_labels``: each frame's clustered speaker, ``NO_SPEAKER`` where
    clustering found no speech. A frame has n speakers where the windows covering it hear at least
    n - 1 + ``heard_threshold`` people on average."""
    n_frames = len(frame_labels)
    votes = np.zeros((n_frames, n_speakers), dtype=np.float32)
    heard = np.zeros(n_frames, dtype=np.float32)
    covered = np.zeros(n_frames, dtype=np.float32)
    for window in windows:
        first = window.first_frame
        last = min(first + len(window.active), n_frames)
        active = window.active[: last - first]
        labels = frame_labels[first:last]
        lent, speakers_heard = _window_votes(active, labels, n_speakers, min_alone_frames)
        votes[first:last] += lent
        heard[first:last] += speakers_heard
        covered[first:last] += 1.0
    # n speakers from a mean of n - 1 + heard_threshold: windows that miss a quiet voice or an overlap's second
    # voice outnumber those that hear it.
    count = np.floor(heard / np.maximum(covered, 1.0) + 1.0 - heard_threshold).astype(int)
    ranked = np.argsort(-votes, axis=1, kind="stable")
    activity = np.zeros((n_frames, n_speakers), dtype=bool)
    for rank in range(n_speakers):
        chosen = np.flatnonzero(count > rank)
        activity[chosen, ranked[chosen, rank]] = True
    return activity & (votes > 0)


def _window_votes(
    active: np.ndarray, labels: np.ndarray, n_speakers: int, min_alone_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """(frames, n_speakers) 0/1: the recording speakers this window says speak in each of its frames; and how
    many people it hears in each frame."""
    lent = np.zeros((len(labels), n_speakers), dtype=np.float32)
    alone = active & (active.sum(axis=1, keepdims=True) == 1) & (labels >= 0)[:, None]
    heard = [s for s in range(active.shape[1]) if alone[:, s].sum() >= min_alone_frames]
    if len(heard) < 2:
        speech = np.flatnonzero(active.any(axis=1) & (labels >= 0))
        lent[speech, labels[speech]] = 1.0
        return lent, active.any(axis=1).astype(np.float32)
    for local, speaker in _distinct_speakers(alone[:, heard], labels, n_speakers):
        lent[active[:, heard[local]], speaker] = 1.0
    return lent, lent.sum(axis=1)


def _distinct_speakers(alone: np.ndarray, labels: np.ndarray, n_speakers: int) -> list[tuple[int, int]]:
    """(local speaker, recording speaker) pairs: two local speakers of one window are two people, so each gets a
    speaker of its own, the pairing that keeps the most solo frames with the speaker they were clustered as (a
    local speaker left over when the window hears more people than the recording has is left out)."""
    from scipy.optimize import linear_sum_assignment

    agreement = np.stack(
        [np.bincount(labels[alone[:, local]], minlength=n_speakers) for local in range(alone.shape[1])]
    )
    locals_, speakers = linear_sum_assignment(agreement, maximize=True)
    # A local speaker none of whose solo frames were clustered as the speaker it was paired with stays with the
    # speaker most of them were: the pairing has no evidence for it.
    return [
        (local, speaker if agreement[local, speaker] else int(agreement[local].argmax()))
        for local, speaker in zip(locals_.tolist(), speakers.tolist(), strict=True)
    ]


def without_blips(activity: np.ndarray, min_frames: int) -> np.ndarray:
    """``activity`` without each speaker's runs shorter than ``min_frames`` (where the windows' speaker count flips
    for a frame or two at a speaker change); a speaker all of whose runs are that short keeps the longest."""
    kept = activity.copy()
    runs_by_speaker: dict[int, list[tuple[int, int]]] = {}
    for speaker, start, end in activity_runs(activity):
        runs_by_speaker.setdefault(speaker, []).append((start, end))
    for speaker, runs in runs_by_speaker.items():
        short = [(start, end) for start, end in runs if end - start < min_frames]
        if len(short) == len(runs):
            short.remove(max(runs, key=lambda run: run[1] - run[0]))
        for start, end in short:
            kept[start:end, speaker] = False
    return kept


def fill_pauses(activity: np.ndarray, max_frames: int) -> np.ndarray:
    """``activity`` with each speaker's pauses of at most ``max_frames`` filled where nobody else speaks."""
    filled = activity.copy()
    anybody = activity.any(axis=1)
    for speaker in range(activity.shape[1]):
        runs = activity_runs(activity[:, speaker : speaker + 1])
        for (_, _, end), (_, start, _) in zip(runs, runs[1:]):
            if start - end <= max_frames and not anybody[end:start].any():
                filled[end:start, speaker] = True
    return filled


def activity_runs(activity: np.ndarray, min_frames: int = 1) -> list[tuple[int, int, int]]:
    """(speaker, first frame, end frame) runs of each speaker's activity, at least ``min_frames`` long."""
    runs = []
    for speaker in range(activity.shape[1]):
        edges = np.diff(np.concatenate([[0], activity[:, speaker].astype(np.int8), [0]]))
        for start, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
            if end - start >= min_frames:
                runs.append((speaker, int(start), int(end)))
    return sorted(runs, key=lambda run: (run[1], run[2]))
