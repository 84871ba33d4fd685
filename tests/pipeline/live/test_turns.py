"""Turn detection (on an energy VAD) and the LocalAgreement policy of partial hypotheses."""

from __future__ import annotations

import numpy as np

from core.audio import SAMPLE_RATE
from core.vad import VadSettings
from pipeline.live.turns import LocalAgreement, TurnDetector
from tests.support.audio import silence, tone
from tests.support.transcribers import energy_vad


def test_turn_detector_finds_speech_edges_however_the_audio_is_cut():
    audio = np.concatenate([silence(0.5), tone(1.0), silence(1.0)])
    whole = TurnDetector(VadSettings(silence_duration_ms=500), energy_vad).feed(audio)
    rng = np.random.default_rng(0)
    detector, pieces, start = TurnDetector(VadSettings(silence_duration_ms=500), energy_vad), [], 0
    while start < len(audio):
        size = int(rng.integers(1, 3000))
        pieces += detector.feed(audio[start : start + size])
        start += size
    assert pieces == whole
    assert [edge.started for edge in whole] == [True, False]
    assert abs(whole[0].sample / SAMPLE_RATE - 0.5) < 0.04
    assert abs(whole[1].sample / SAMPLE_RATE - 2.0) < 0.07  # end of speech + the silence duration


def test_a_short_pause_does_not_end_the_turn():
    audio = np.concatenate([tone(0.5), silence(0.3), tone(0.5), silence(0.6)])
    edges = TurnDetector(VadSettings(silence_duration_ms=500), energy_vad).feed(audio)
    assert [edge.started for edge in edges] == [True, False]


def test_local_agreement_sends_only_what_two_hypotheses_share_and_never_retracts():
    agreement, sent = LocalAgreement(), []
    for hypothesis in ["the", "the quick", "the quick brow", "the quick brown fox", "the quack brown fox", "the quick brown fox jumps"]:
        if words := agreement.update(hypothesis):
            sent.append(agreement.delta(words))
    assert sent == ["the", " quick"]
    assert agreement.confirmed == ["the", "quick"]
    # Case and punctuation do not break an agreement; the newest hypothesis's spelling is sent.
    assert agreement.update("The quick, brown fox jumps") == ["brown", "fox", "jumps"]
    assert agreement.rest("the quick brown fox jumps over") == " over"


def test_rest_completes_the_deltas_to_the_transcript_unless_it_contradicts_them():
    agreement = LocalAgreement()
    agreement.update("hello there")
    agreement.update("hello there general")
    assert agreement.confirmed == ["hello", "there"]
    assert agreement.rest("Hello there, general Kenobi.") == " general Kenobi."
    contradicted = LocalAgreement()
    contradicted.update("hello there")
    contradicted.update("hello there")
    assert contradicted.rest("yellow there") == ""
