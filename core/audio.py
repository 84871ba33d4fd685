"""The one place where uploaded audio is decoded: any container FFmpeg reads, to 16 kHz mono float32.

PyAV bundles FFmpeg, so decoding works on machines without a system ``ffmpeg``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from .errors import InvalidInputError, TooLargeError, UnsupportedAudioError

SAMPLE_RATE = 16_000
logger = logging.getLogger(__name__)


AudioSource = str | Path | BinaryIO


def decode_audio(
    source: AudioSource, sample_rate: int = SAMPLE_RATE, max_duration_s: float | None = None
) -> np.ndarray:
    """Decode the first audio stream of a file path or a seekable binary file object to mono
    float32 samples at ``sample_rate``.

    A file that is cut short or damaged part-way yields the part that decodes; a file with no
    decodable audio at all raises :class:`UnsupportedAudioError`. Audio longer than
    ``max_duration_s`` raises :class:`TooLargeError` as soon as decoding passes the limit.
    """
    if _size(source) == 0:
        raise InvalidInputError("The uploaded file is empty.", input="file", code="empty_file")
    try:
        container = av.open(source if _is_file_object(source) else str(source), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise UnsupportedAudioError(
            "The uploaded file is not audio in a format FFmpeg can read.", input="file"
        ) from exc
    with container:
        if not container.streams.audio:
            raise UnsupportedAudioError("The uploaded file has no audio stream.", input="file")
        max_samples = int(max_duration_s * sample_rate) if max_duration_s else None
        chunks = _decode_stream(container, sample_rate, max_samples)
    if not chunks:  # a valid container whose audio stream holds no samples
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


SILENCE_PEAK = 10 ** (-60 / 20)  # -60 dBFS


def is_silent(audio: np.ndarray) -> bool:
    """No samples, or nothing louder than -60 dBFS: Whisper would only hallucinate words here."""
    return audio.size == 0 or float(np.abs(audio).max()) < SILENCE_PEAK


def _is_file_object(source: AudioSource) -> bool:
    return hasattr(source, "read")


def _size(source: AudioSource) -> int:
    if not _is_file_object(source):
        return os.stat(source).st_size
    size = source.seek(0, os.SEEK_END)
    source.seek(0)
    return size


def _decode_stream(
    container: av.container.InputContainer, sample_rate: int, max_samples: int | None
) -> list[np.ndarray]:
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks: list[np.ndarray] = []
    decoded_any = False
    total = 0
    try:
        for frame in container.decode(stream):
            decoded_any = True
            for out in resampler.resample(frame):
                chunks.append(_to_array(out))
                total += len(chunks[-1])
            if max_samples is not None and total > max_samples:
                raise TooLargeError(
                    f"The audio is longer than the limit of {max_samples / sample_rate:g} seconds.",
                    input="file",
                    code="audio_too_long",
                )
    except (av.FFmpegError, ValueError) as exc:
        if not decoded_any:
            raise UnsupportedAudioError(
                "The uploaded file is not audio in a format FFmpeg can read.", input="file"
            ) from exc
        logger.warning("audio is damaged after %d decoded chunks; keeping what decoded: %s", len(chunks), exc)
    if decoded_any:
        chunks.extend(_to_array(out) for out in resampler.resample(None))
    return chunks


def _to_array(frame: av.AudioFrame) -> np.ndarray:
    # Packed float mono: one plane, one channel.
    return frame.to_ndarray().reshape(-1)
