"""G.711 telephony audio (ITU-T G.711): 8-bit mu-law and A-law samples to 16-bit linear PCM.

Each 8-bit code stands for one 16-bit sample, so decoding is a lookup in a 256-entry table
(``audioop``, which did this, is gone from Python 3.13).
"""

from __future__ import annotations

import numpy as np

G711_SAMPLE_RATE = 8_000


def _mu_law_table() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


def _a_law_table() -> np.ndarray:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


MU_LAW = _mu_law_table()
A_LAW = _a_law_table()


def decode_mu_law(data: bytes) -> np.ndarray:
    """16-bit linear samples of G.711 mu-law bytes (``audio/pcmu``)."""
    return MU_LAW[np.frombuffer(data, dtype=np.uint8)]


def decode_a_law(data: bytes) -> np.ndarray:
    """16-bit linear samples of G.711 A-law bytes (``audio/pcma``)."""
    return A_LAW[np.frombuffer(data, dtype=np.uint8)]
