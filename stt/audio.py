"""The one place where uploaded audio is decoded: any container FFmpeg reads, to 16 kHz mono float32.

PyAV bundles FFmpeg, so decoding works on machines without a system ``ffmpeg``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np

from .errors import InvalidRequestError, UnsupportedAudioError

SAMPLE_RATE = 16_000
logger = logging.getLogger(__name__)


def decode_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream of ``path`` to mono float32 samples at ``sample_rate``.

    A file that is cut short or damaged part-way yields the part that decodes; a file with no
    decodable audio at all raises :class:`UnsupportedAudioError`.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise InvalidRequestError("The uploaded file is empty.", param="file", code="empty_file")
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise UnsupportedAudioError(
            "The uploaded file is not audio in a format FFmpeg can read.", param="file"
        ) from exc
    with container:
        if not container.streams.audio:
            raise UnsupportedAudioError("The uploaded file has no audio stream.", param="file")
        chunks = _decode_stream(container, sample_rate)
    if not chunks:
        raise UnsupportedAudioError("No audio could be decoded from the uploaded file.", param="file")
    return np.concatenate(chunks).astype(np.float32, copy=False)


def _decode_stream(container: av.container.InputContainer, sample_rate: int) -> list[np.ndarray]:
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    chunks: list[np.ndarray] = []
    decoded_any = False
    try:
        for frame in container.decode(stream):
            decoded_any = True
            chunks.extend(_to_array(out) for out in resampler.resample(frame))
    except (av.FFmpegError, ValueError) as exc:
        if not decoded_any:
            raise UnsupportedAudioError(
                "The uploaded file is not audio in a format FFmpeg can read.", param="file"
            ) from exc
        logger.warning("audio is damaged after %d decoded chunks; keeping what decoded: %s", len(chunks), exc)
    if decoded_any:
        chunks.extend(_to_array(out) for out in resampler.resample(None))
    return chunks


def _to_array(frame: av.AudioFrame) -> np.ndarray:
    # Packed float mono: one plane, one channel.
    return frame.to_ndarray().reshape(-1)
