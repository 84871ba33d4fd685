"""Turning the segmentation's per-window local speakers into the recording's speakers (synthetic windows)."""

from __future__ import annotations

import numpy as np

from core.types import SpeakerTurn
from strategies.diarization.embedded.local_speakers import (
    NO_SPEAKER,
    activity_runs,
    fill_pauses,
    speaker_activity,
    with_local_speakers,
    without_blips,
)
from strategies.diarization.embedded.segmentation import LocalWindow, Segmentation
from strategies.diarization.embedded.settings import EmbeddedSettings


def _window(first: int, frames: int, *spans: tuple[int, int, int]) -> LocalWindow:
    """A window whose local speaker ``s`` speaks from frame ``a`` to ``b`` (relative to the window)."""
    active = np.zeros((frames, 3), dtype=bool)
    for local, a, b in spans:
        active[a:b, local] = True
    return LocalWindow(first, active)


def test_a_window_hearing_two_people_draws_the_change_and_the_overlap():
    # Clustering put the change at frame 50; the segmentation hears local 1 up to 60 and local 2 from 40.
    labels = np.array([0] * 50 + [1] * 50)
    window = _window(0, 100, (1, 0, 60), (2, 40, 100))
    activity = speaker_activity([window], labels, n_speakers=2, min_alone_frames=20, heard_threshold=0.5)
    assert activity_runs(activity) == [(0, 0, 60), (1, 40, 100)]  # frames 40-60: both


def test_local_speakers_map_to_the_speaker_their_solo_frames_were_clustered_as():
    labels = np.array([1] * 45 + [0] * 10 + [1] * 15 + [0] * 30)  # a clustering slip inside local 0's turn
    window = _window(0, 100, (0, 0, 70), (2, 70, 100))
    activity = speaker_activity([window], labels, n_speakers=2, min_alone_frames=20, heard_threshold=0.5)
    assert activity_runs(activity) == [(1, 0, 70), (0, 70, 100)]


def test_a_window_hearing_one_person_keeps_the_clustered_speakers():
    # Far-field audio: the model hears one voice where clustering found two.
    labels = np.array([0] * 50 + [1] * 50)
    window = _window(0, 100, (0, 0, 100))
    activity = speaker_activity([window], labels, n_speakers=2, min_alone_frames=20, heard_threshold=0.5)
    assert activity_runs(activity) == [(0, 0, 50), (1, 50, 100)]


def test_a_second_voice_heard_too_briefly_alone_does_not_redraw_the_window():
    labels = np.array([0] * 100)
    window = _window(0, 100, (0, 0, 100), (1, 45, 55))  # local 1 is never alone
    activity = speaker_activity([window], labels, n_speakers=2, min_alone_frames=20, heard_threshold=0.5)
    assert activity_runs(activity) == [(0, 0, 100)]


def test_frames_nobody_speaks_in_get_no_speaker_and_windows_are_averaged():
    labels = np.array([NO_SPEAKER] * 10 + [0] * 80 + [NO_SPEAKER] * 10)
    hears = _window(0, 100, (0, 10, 90))
    silent = _window(0, 100)
    activity = speaker_activity([hears, hears, silent], labels, n_speakers=1, min_alone_frames=20, heard_threshold=0.5)
    assert activity_runs(activity) == [(0, 10, 90)]  # two of three windows hear speech: rounded to one speaker
    activity = speaker_activity([hears, silent, silent], labels, n_speakers=1, min_alone_frames=20, heard_threshold=0.5)
    assert activity_runs(activity) == []


def test_a_voice_a_third_of_the_windows_hear_is_kept_from_a_quarter_up():
    """A quiet talker, or an overlap's second voice, is heard by fewer of the windows covering it than a loud voice
    alone: with ``heard_threshold`` 0.25, one window in three is enough, for the first voice and the second."""
    labels = np.array([0] * 50 + [1] * 50)
    one_voice = _window(0, 100, (0, 0, 100))
    two_voices = _window(0, 100, (0, 0, 60), (1, 40, 100))
    silent = _window(0, 100)
    quiet = speaker_activity([one_voice, silent, silent], labels, 2, 20, heard_threshold=0.25)
    assert activity_runs(quiet) == [(0, 0, 50), (1, 50, 100)]
    overlap = speaker_activity([two_voices, one_voice, one_voice], labels, 2, 20, heard_threshold=0.25)
    assert activity_runs(overlap) == [(0, 0, 60), (1, 40, 100)]  # frames 40-60: both, one window in three
    # Rounding the mean (0.5) keeps one speaker a frame there, the one most windows lent it.
    rounded = speaker_activity([two_voices, one_voice, one_voice], labels, 2, 20, heard_threshold=0.5)
    assert activity_runs(rounded) == [(0, 0, 50), (1, 50, 100)]


def test_two_local_speakers_of_one_window_are_two_speakers():
    """Clustering gave both local speakers' solo frames mostly to speaker 0 (the second voice's only a third of
    its frames to speaker 1): they still become two speakers, the pairing that keeps the most frames."""
    labels = np.array([0] * 40 + [0] * 40 + [1] * 20)
    window = _window(0, 100, (0, 0, 40), (1, 40, 100))
    activity = speaker_activity([window], labels, 2, 20, 0.5)
    assert activity_runs(activity) == [(0, 0, 40), (1, 40, 100)]


def test_windows_are_placed_at_their_first_frame():
    labels = np.array([NO_SPEAKER] * 200 + [0] * 50 + [1] * 50)
    window = _window(200, 100, (0, 0, 50), (1, 50, 100))
    assert activity_runs(speaker_activity([window], labels, 2, 20, 0.5)) == [(0, 200, 250), (1, 250, 300)]


def test_short_pauses_are_filled_only_where_nobody_else_speaks():
    activity = np.zeros((100, 2), dtype=bool)
    activity[0:20, 0] = activity[30:50, 0] = True  # a 10-frame pause: filled
    activity[50:60, 1] = True
    activity[70:90, 0] = True  # a 20-frame pause with speaker 1 in it: kept
    filled = fill_pauses(activity, max_frames=20)
    assert activity_runs(filled) == [(0, 0, 50), (1, 50, 60), (0, 70, 90)]
    assert activity_runs(fill_pauses(activity, max_frames=5)) == activity_runs(activity)


def test_a_count_asked_for_keeps_a_speaker_the_redraw_would_drop():
    """Clustering found three speakers; the window hears two voices, and the second-largest of its solo frames'
    speakers loses the pairing. Asked for three, the third keeps its clustered frames; not asked, it is gone."""
    turns = [SpeakerTurn("0", 0.0, 0.5), SpeakerTurn("1", 0.5, 0.6), SpeakerTurn("2", 0.6, 1.0)]
    segmentation = Segmentation([_window(0, 100, (0, 0, 60), (1, 60, 100))], np.ones(100), np.zeros(100))
    settings = EmbeddedSettings(min_local_speaker_s=0.2, heard_threshold=0.5, merge_gap_s=0.0)
    redrawn = with_local_speakers(turns, segmentation, settings)
    assert {t.speaker for t in redrawn} == {"0", "2"}
    kept = with_local_speakers(turns, segmentation, settings, at_least=3)
    assert [(t.speaker, t.start, t.end) for t in kept] == [("0", 0.0, 0.5), ("1", 0.5, 0.6), ("2", 0.6, 1.0)]


def test_blips_of_a_frame_or_two_are_dropped_unless_they_are_all_a_speaker_has():
    activity = np.zeros((100, 3), dtype=bool)
    activity[0:50, 0] = activity[50:100, 1] = True
    activity[49:52, 0] = True  # speaker 0 runs on for two frames into speaker 1's turn: a longer run, kept
    activity[70:72, 0] = True  # a blip of speaker 0 inside speaker 1's turn
    activity[20:22, 2] = activity[80:83, 2] = True  # speaker 2 has nothing else: its longest blip stays
    kept = without_blips(activity, min_frames=10)
    assert activity_runs(kept) == [(0, 0, 52), (1, 50, 100), (2, 80, 83)]
    assert activity_runs(without_blips(activity, min_frames=1)) == activity_runs(activity)
