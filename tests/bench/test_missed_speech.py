"""``bench.missed_speech``: the candidates' masks on a dev recording (plumbing: the shares it prints are figures, not
checked here), and the reference's speech as frames."""

from __future__ import annotations

from bench.missed_speech import candidates, speech_frames
from core.audio import SAMPLE_RATE
from core.types import SpeakerTurn
from strategies.diarization.embedded.frames import FRAME_S


def test_reference_turns_become_frames_overlaps_once():
    frames = speech_frames([SpeakerTurn("A", 0.1, 0.3), SpeakerTurn("B", 0.2, 0.5)], 100)
    assert frames.sum() == 40 and frames[10:50].all()


def test_every_candidate_gives_a_frame_mask_that_hears_some_of_a_meetings_speech(embedded_diarizer, dev_recordings):
    audio, reference = dev_recordings["pyannote_sample"]
    n_frames = int(len(audio) / SAMPLE_RATE / FRAME_S) + 1
    truth = speech_frames(reference, n_frames)
    masks = candidates(embedded_diarizer, audio, n_frames)
    assert len(masks) == 3
    for name, hears in masks.items():
        assert hears.shape == (n_frames,) and hears.dtype == bool, name
        assert (hears & truth).sum() > 0.5 * truth.sum(), name  # each hears most of this clear recording's speech
