"""Writes test audio in containers and codecs the corpus lacks, with PyAV."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np


def encode(samples: np.ndarray, sample_rate: int, path: Path, codec: str, channels: int = 1) -> Path:
    """Encode float32 samples (shape (n,) or (channels, n)) into ``path``; the container follows its suffix."""
    layout = "mono" if channels == 1 else "stereo"
    planar = np.atleast_2d(samples).astype(np.float32)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=sample_rate, layout=layout)
        frame_size = 960 if codec == "libopus" else 1024
        chunks = (np.ascontiguousarray(planar[:, i : i + frame_size]) for i in range(0, planar.shape[1], frame_size))
        _encode_frames(container, stream, chunks, "fltp", layout, sample_rate)
    return path


def _encode_frames(container, stream, chunks, sample_format: str, layout: str, sample_rate: int) -> None:
    """Encode (channels, n) sample chunks as consecutive frames, then flush the encoder."""
    start = 0
    for chunk in chunks:
        frame = av.AudioFrame.from_ndarray(chunk, format=sample_format, layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        start += chunk.shape[1]
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)



def encode_silence(
    path: Path,
    sample_rate: int,
    samples: int,
    codec: str = "flac",
    block_size: int | None = None,
    declare_duration: bool = True,
    level: int = 0,
) -> Path:
    """Encode ``samples`` of digital silence at ``sample_rate`` into ``path`` (the container follows its suffix),
    streaming it: hours cost no memory.

    ``block_size`` sets the encoder's samples per frame (FLAC takes 16..65535, at any rate up to 655,350 Hz,
    1 Hz included): constant subframes make every frame about 14 bytes, which is what decode bombs are made
    of. Without ``declare_duration`` the file is written as through a pipe, so its header states no duration.
    ``level`` makes every sample that 16-bit value instead of 0: a constant level (328 is -40 dBFS), as small.
    """
    options = {"frame_size": str(block_size)} if block_size else {}
    with path.open("wb") as file:
        target = file if declare_duration else _Unseekable(file)
        with av.open(target, mode="w", format=_FORMATS.get(path.suffix.lower())) as container:
            stream = container.add_stream(codec, rate=sample_rate, layout="mono", options=options)
            step = block_size or 4096
            constant = np.full((1, step), level, dtype=np.int16)
            chunks = (constant[:, : min(step, samples - start)] for start in range(0, samples, step))
            _encode_frames(container, stream, chunks, "s16", "mono", sample_rate)
    return path


_FORMATS = {".flac": "flac", ".wav": "wav", ".ogg": "ogg", ".opus": "ogg", ".webm": "webm", ".mkv": "matroska",
            ".m4a": "ipod", ".mp4": "mp4", ".mp3": "mp3", ".wv": "wv"}


class _Unseekable(io.RawIOBase):
    """A file written as through a pipe: a muxer cannot go back to put the duration in the header."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data) -> int:
        return self.file.write(data)
