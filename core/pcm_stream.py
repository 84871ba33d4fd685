"""Live audio arriving in pieces: 16-bit PCM at any rate to 16 kHz mono float32, one piece at a time.

The resampler (FFmpeg's, through PyAV) keeps its filter state between pieces, so the output is the same
however the stream was cut: no clicks at the boundaries, no drift.
"""

from __future__ import annotations

import av
import numpy as np

from .audio import SAMPLE_RATE


class PcmToModelRate:
    """Feed 16-bit mono samples at ``rate``; get 16 kHz float32 samples back."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def convert(self, samples: np.ndarray) -> np.ndarray:
        if not len(samples):
            return np.zeros(0, dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = self.rate
        pieces = [out.to_ndarray().reshape(-1) for out in self._resampler.resample(frame)]
        return np.concatenate(pieces).astype(np.float32, copy=False) if pieces else np.zeros(0, dtype=np.float32)
