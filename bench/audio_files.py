"""Writes test audio in containers and codecs the corpus lacks, with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def encode(samples: np.ndarray, sample_rate: int, path: Path, codec: str, channels: int = 1) -> Path:
    """Encode float32 samples (shape (n,) or (channels, n)) into ``path``; the container follows its suffix."""
    layout = "mono" if channels == 1 else "stereo"
    planar = np.atleast_2d(samples).astype(np.float32)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=sample_rate, layout=layout)
        frame_size = 960 if codec == "libopus" else 1024
        for start in range(0, planar.shape[1], frame_size):
            chunk = np.ascontiguousarray(planar[:, start : start + frame_size])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate = sample_rate
            frame.pts = start
            frame.time_base = Fraction(1, sample_rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
