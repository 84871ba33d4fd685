from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.types import TranscribeOptions
from strategies.whisper.seeding import SEED_BITS, clip_seed
from tests.support.audio import tone

CLIP = tone(2.0)
OPTIONS = TranscribeOptions(language="en")


def test_the_same_clip_with_the_same_options_has_the_same_seed():
    assert clip_seed(CLIP, OPTIONS) == clip_seed(CLIP.copy(), TranscribeOptions(language="en"))
    assert 0 <= clip_seed(CLIP, OPTIONS) < 1 << SEED_BITS


def test_another_clip_or_what_changes_the_decoding_changes_the_seed():
    seed = clip_seed(CLIP, OPTIONS)
    assert clip_seed(tone(2.0, hz=221.0), OPTIONS) != seed
    assert clip_seed(CLIP[:-1], OPTIONS) != seed
    for change in ({"language": "pt"}, {"task": "translate"}, {"initial_prompt": "A speech."},
                   {"keywords": ("Kennedy",)}, {"temperature": 0.4}):
        assert clip_seed(CLIP, replace(OPTIONS, **change)) != seed, change


def test_what_only_adds_to_a_result_keeps_the_seed():
    seed = clip_seed(CLIP, OPTIONS)
    assert clip_seed(CLIP, replace(OPTIONS, word_timestamps=True, logprobs=True)) == seed
    assert clip_seed(CLIP, replace(OPTIONS, temperature=0.0)) == clip_seed(CLIP, replace(OPTIONS, temperature=None))
    assert clip_seed(CLIP, replace(OPTIONS, initial_prompt="")) == seed


def test_a_requested_seed_is_the_seed_of_every_clip():
    requested = replace(OPTIONS, seed=42)
    assert clip_seed(CLIP, requested) == clip_seed(np.zeros(100, dtype=np.float32), requested) == 42
    assert 0 <= clip_seed(CLIP, replace(OPTIONS, seed=-1)) < 1 << SEED_BITS
