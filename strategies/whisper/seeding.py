"""The seed of a clip's sampling: the same clip with the same options is sampled alike, alone or in any batch.

Whisper's temperature fallback decodes a clip again by sampling. Its random draws come from the clip's own seed:
the request's ``seed`` when it gives one, else a digest of the clip's samples and of the options that change what
is decoded (language, task, prompt, keywords, temperature). Options that only add to a result (word timings,
token log-probabilities) leave the seed, and so the text, as it is.
"""

from __future__ import annotations

import hashlib

import numpy as np

from core.types import TranscribeOptions

SEED_BITS = 63
"""Seeds are non-negative and fit a signed 64-bit integer, which every generator (torch, numpy) takes."""


def clip_seed(clip: np.ndarray, options: TranscribeOptions) -> int:
    """The seed for sampling ``clip`` (16 kHz mono samples) decoded with ``options``."""
    if options.seed is not None:
        return options.seed % (1 << SEED_BITS)
    digest = hashlib.blake2b(digest_size=8)
    digest.update(np.ascontiguousarray(clip, dtype=np.float32).tobytes())
    decoding = (options.language, options.task, options.initial_prompt or None, options.keywords, options.temperature or 0.0)
    digest.update(repr(decoding).encode())
    return int.from_bytes(digest.digest(), "big") >> (64 - SEED_BITS)


def temperature_seed(seed: int, temperature: float) -> int:
    """The seed of a clip's draws at one temperature of the fallback: each temperature draws afresh, and a clip's
    draws at one temperature do not depend on how many it made at the one before."""
    state = np.random.SeedSequence([seed, round(temperature * 1000)]).generate_state(1, dtype=np.uint64)[0]
    return int(state) >> (64 - SEED_BITS)
