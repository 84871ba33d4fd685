"""The synthetic recordings of the diarization benchmark."""

from __future__ import annotations

import numpy as np
import pytest

from bench.der import diarization_error_rate
from bench.diarization_der import _join, synthetic_cases


def _level(seconds: float, value: float = 0.1) -> np.ndarray:
    """A constant signal: sound enough for the benchmark's reference turns."""
    return np.full(int(seconds * 16_000), value, dtype=np.float32)


def test_join_places_gaps_and_overlaps_in_the_reference():
    audio, turns = _join([("a", _level(2.0)), ("b", _level(2.0)), ("a", _level(1.0))], [0.3, -1.0, 0.0])
    assert [(t.speaker, t.start, t.end) for t in turns] == [("a", 0.0, 2.0), ("b", 2.3, 4.3), ("a", 3.3, 4.3)]
    assert len(audio) == int(4.3 * 16_000)
    overlapped = diarization_error_rate(turns, turns)
    assert overlapped["reference_s"] == pytest.approx(5.0)


def test_reference_turns_leave_out_the_silence_an_utterance_opens_and_closes_with():
    utterance = np.concatenate([np.zeros(8_000), _level(1.0), np.zeros(3_200), _level(1.0), np.zeros(4_800)])
    _, turns = _join([("a", utterance.astype(np.float32))], [0.0])
    assert (turns[0].start, turns[0].end) == (0.5, 2.7)  # the 0.2 s pause inside stays in the turn


def test_synthetic_cases_have_the_speaker_counts_they_are_named_for():
    rng = np.random.default_rng(0)
    speakers = {f"s{i}": [rng.standard_normal(16_000).astype(np.float32) * 0.1] for i in range(8)}
    cases = synthetic_cases(speakers)
    assert {len({t.speaker for t in turns}) for name, (_, turns) in cases.items() if name.startswith("count_")} == {
        1, 2, 4, 6, 8
    }
    _, overlapping = cases["two_overlapping_1-2s"]
    assert any(b.start < a.end for a, b in zip(overlapping, overlapping[1:]))
