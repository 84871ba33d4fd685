"""The one place where uploaded audio is decoded: any container FFmpeg reads, to 16 kHz mono float32.

PyAV bundles FFmpeg, so decoding works on machines without a system ``ffmpeg``.

An upload is untrusted, and a few kilobytes can describe hours of audio (a FLAC frame of silence is
about 14 bytes, whatever its length) or a sample rate of 1 Hz that resampling multiplies 16,000 times.
So before the first frame is decoded, the first audio stream's sample rate and declared duration are
checked; while decoding, the duration is counted on the source timeline, before any resampling, and
checked frame by frame against the duration limit and against a bound on how much the upload may
expand; and the samples go into a buffer that never holds more than those limits, so the peak memory
of a decode is about its output, once.

The output can be reserved in the audio memory budget (``core.audio_memory``) between opening the file
and decoding it: ``open_audio`` reads the header and says what the audio will take (``expected_bytes``),
and ``AudioUpload.decode`` keeps its reservation ahead of the samples, in steps, as it decodes.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from .audio_memory import AudioReservation
from .errors import InvalidInputError, TooLargeError, UnsupportedAudioError

SAMPLE_RATE = 16_000
logger = logging.getLogger(__name__)

MIN_SAMPLE_RATE = 4_000
"""Below this no codec or recorder in use writes speech (telephony is 8 kHz): a lower rate is a decode bomb."""
MAX_SAMPLE_RATE = 768_000
"""The highest rate of any real recording (DXD is 352.8 kHz); beyond it a rate is a lie."""

MAX_EXPANSION = 8192
"""Most bytes of decoded float32 audio, on the larger of the source and the output timelines, per uploaded byte.

What files actually expand by (float32 at 16 kHz per byte uploaded): the speech corpus 0.6 to 16 (MP3 at its
lowest bitrates); speech at 4.75 kbit/s AMR or 6 kbit/s Opus about 100. Only digital silence goes further,
and one hour of it gives, with FFmpeg's encoders: FLAC 350 to 510, Opus 280, AAC 170, MP3 8; with 4096-sample
FLAC blocks (the ``flac`` tool's default) 1,220 at 16 kHz, 2,360 at 8 kHz (2,640 with 4608-sample blocks),
4,160 at 4 kHz; WavPack 1,180 at 44.1 kHz but 9,300 at 8 kHz. A decode bomb is silence in the largest
frames a codec allows (65,535-sample FLAC blocks at 8 kHz: 16,000 as FFmpeg writes it, some 37,000 without
the 8 KiB of padding its muxer adds).

8192 is 500 times what the corpus expands by, 80 times speech in the leanest codecs and three times FLAC
silence at 8 kHz: what it refuses is minutes of pure digital silence packed tighter than standard encoders
pack it, which holds nothing to transcribe.
"""
MIN_EXPANSION_BYTES = 32 * 2**20
"""Any upload may decode to this much (about 9 minutes at 16 kHz), however small: the ratio is for big outputs."""

_BLOCK_SAMPLES = 2**28
"""The decode buffer reserves up to 1 GiB at a time (4.6 hours at 16 kHz). A reservation is not memory: a
block this big is its own mapping, whose pages become resident only as samples fill them, so a buffer
within one block holds exactly its output and, shrunk in place at the end, is returned without a copy."""

GROWTH_BYTES = 16 * 2**20
"""A decode whose length the header does not state reserves its output this much at a time (4.4 minutes)."""

_ESTIMATED_DURATION_FORMATS = frozenset({"mp3", "aac", "ac3", "eac3", "dts", "amr", "amrnb", "amrwb", "loas", "mpeg"})
"""Raw streams with no duration in a header: FFmpeg estimates theirs from the first frame's bitrate, which a
VBR file without a Xing header can overstate many times, so their durations are checked only as they decode."""


AudioSource = str | Path | BinaryIO


def decode_audio(
    source: AudioSource, sample_rate: int = SAMPLE_RATE, max_duration_s: float | None = None
) -> np.ndarray:
    """Decode the first audio stream of a file path or a seekable binary file object to mono
    float32 samples at ``sample_rate``.

    A file that is cut short or damaged part-way yields the part that decodes; a file with no
    decodable audio at all raises :class:`UnsupportedAudioError`, and so does a sample rate below
    :data:`MIN_SAMPLE_RATE` or above :data:`MAX_SAMPLE_RATE`. Audio longer than ``max_duration_s``
    raises :class:`TooLargeError`: at once when the file declares it, else as soon as decoding passes
    the limit. Audio that decodes to more than :data:`MAX_EXPANSION` times the file's size (and
    more than :data:`MIN_EXPANSION_BYTES`) raises :class:`InvalidInputError` the same way.
    """
    with open_audio(source, sample_rate, max_duration_s) as upload:
        return upload.decode()


@contextmanager
def open_audio(
    source: AudioSource, sample_rate: int = SAMPLE_RATE, max_duration_s: float | None = None
) -> Iterator[AudioUpload]:
    """The upload opened and its header checked (see ``decode_audio`` for the checks and their errors), before
    any frame is decoded; the file is closed on leaving."""
    size = _size(source)
    if size == 0:
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
        stream = container.streams.audio[0]
        limits = _Limits(size, sample_rate, max_duration_s or None)
        _check_sample_rate(stream.codec_context.sample_rate)
        declared_s = _declared_duration_s(container, stream)
        if declared_s is not None:
            limits.check(declared_s, declared_s * stream.codec_context.sample_rate)
        yield AudioUpload(container, stream, sample_rate, limits, declared_s, _estimated_duration_s(container))


class AudioUpload:
    """An opened upload whose header passed the checks: what its audio will take, and its decode (once)."""

    def __init__(
        self,
        container: av.container.InputContainer,
        stream: av.AudioStream,
        sample_rate: int,
        limits: _Limits,
        declared_s: float | None,
        estimated_s: float | None,
    ) -> None:
        self._container = container
        self._stream = stream
        self._sample_rate = sample_rate
        self._limits = limits
        self._declared_s = declared_s
        self._estimated_s = estimated_s

    @property
    def declared_s(self) -> float | None:
        """The duration the header states (None when it states none: a stream written through a pipe, a raw MP3,
        whose duration would be FFmpeg's guess from one frame's bitrate). A file may lie: decoding checks it."""
        return self._declared_s

    @property
    def expected_bytes(self) -> int:
        """What the decoded audio will take, as far as the header tells: the duration it declares (and a second of
        slack for resampling), else FFmpeg's estimate from the bitrate, else one step of :data:`GROWTH_BYTES`; never
        more than the limits let it reach."""
        most = self._limits.capacity * 4  # float32
        seconds = self._declared_s if self._declared_s is not None else self._estimated_s
        if seconds is None:
            return min(GROWTH_BYTES, most)
        return min((math.ceil(seconds * self._sample_rate) + self._sample_rate) * 4, most)

    def decode(self, reservation: AudioReservation | None = None) -> np.ndarray:
        """The samples, mono float32 at the sample rate asked for. With ``reservation``, they are decoded only into
        bytes it holds: it grows ahead of them as ``AudioReservation.cover`` does (waiting, or raising when the
        budget cannot give more), and the output is held by it until freed; should the decode fail, it is
        released."""
        try:
            audio = _decode_stream(
                self._container, self._stream, self._sample_rate, self._limits, self._declared_s, reservation
            )
            return audio if reservation is None else reservation.hold(audio)
        except BaseException:
            if reservation is not None:
                reservation.release()
            raise


def _is_file_object(source: AudioSource) -> bool:
    return hasattr(source, "read")


def _size(source: AudioSource) -> int:
    if not _is_file_object(source):
        return os.stat(source).st_size
    size = source.seek(0, os.SEEK_END)
    source.seek(0)
    return size


def _check_sample_rate(rate: int | None) -> None:
    if not rate:
        raise UnsupportedAudioError(
            "The uploaded audio declares no sample rate.", input="file", code="unsupported_sample_rate"
        )
    if rate < MIN_SAMPLE_RATE:
        raise UnsupportedAudioError(
            f"The audio's sample rate of {rate} Hz is below the lowest supported rate of {MIN_SAMPLE_RATE} Hz.",
            input="file",
            code="unsupported_sample_rate",
        )
    if rate > MAX_SAMPLE_RATE:
        raise UnsupportedAudioError(
            f"The audio's sample rate of {rate} Hz is above the highest supported rate of {MAX_SAMPLE_RATE} Hz.",
            input="file",
            code="unsupported_sample_rate",
        )


def _estimated_duration_s(container: av.container.InputContainer) -> float | None:
    """FFmpeg's idea of the duration, whatever it rests on (a header, or the first frame's bitrate)."""
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


def _declared_duration_s(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    """The duration the file's headers state, if they state one: a fast path only, as a file may lie
    or be cut short; the decoded timeline is what the limits hold to."""
    if _ESTIMATED_DURATION_FORMATS.intersection(container.format.name.split(",")):
        return None
    if stream.duration is not None and stream.duration > 0 and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


class _Limits:
    """The duration limit and the expansion bound, both checked on the source timeline."""

    def __init__(self, upload_bytes: int, sample_rate: int, max_duration_s: float | None) -> None:
        self.upload_bytes = upload_bytes
        self.sample_rate = sample_rate
        self.max_duration_s = max_duration_s
        self.max_samples = max(MIN_EXPANSION_BYTES, MAX_EXPANSION * upload_bytes) // 4  # float32
        by_expansion = self.max_samples
        by_duration = math.ceil(max_duration_s * sample_rate) if max_duration_s is not None else by_expansion
        # Resampling rounds: a second of slack on the output timeline; the checks themselves are exact.
        self.capacity = min(by_expansion, by_duration) + sample_rate

    def check(self, source_s: float, source_samples: float) -> None:
        """Raise if audio of ``source_s`` seconds, ``source_samples`` samples at its own rate, is over a limit."""
        if self.max_duration_s is not None and source_s > self.max_duration_s:
            raise self.too_long()
        if max(source_samples, source_s * self.sample_rate) > self.max_samples:
            raise self.too_expanded()

    def too_long(self) -> TooLargeError:
        return TooLargeError(
            f"The audio is longer than the limit of {self.max_duration_s:g} seconds.",
            input="file",
            code="audio_too_long",
        )

    def too_expanded(self) -> InvalidInputError:
        return InvalidInputError(
            f"The uploaded file ({self.upload_bytes} bytes) decodes to more than {MAX_EXPANSION} times its size "
            f"(over {self.max_samples / self.sample_rate:.0f} seconds of audio): a file that expands this much "
            "is refused as a decompression bomb. Long stretches of digital silence do this: trim them.",
            input="file",
            code="audio_expansion_too_large",
        )

    def overflow(self) -> InvalidInputError | TooLargeError:
        by_duration = self.max_duration_s is not None and self.max_duration_s * self.sample_rate < self.max_samples
        return self.too_long() if by_duration else self.too_expanded()


class _SampleBuffer:
    """Float32 samples appended in place, up to ``capacity``, in blocks of at most :data:`_BLOCK_SAMPLES`:
    the buffer never copies itself to grow, and reserves no more than it may hold. With ``reservation``, the
    samples it holds are covered by it, :data:`GROWTH_BYTES` at a time."""

    def __init__(
        self, capacity: int, expected: int | None = None, reservation: AudioReservation | None = None
    ) -> None:
        self.capacity = capacity
        self.size = 0
        self._blocks: list[np.ndarray] = []
        self._free = 0  # unused samples at the end of the last block
        self._next_block = min(capacity, expected) if expected is not None else capacity
        self._reservation = reservation

    def append(self, samples: np.ndarray) -> bool:
        """Copy ``samples`` in; False, copying nothing, when they would pass the capacity."""
        if self.size + len(samples) > self.capacity:
            return False
        if self._reservation is not None:
            self._reservation.cover((self.size + len(samples)) * 4, ahead=GROWTH_BYTES)
        while len(samples):
            if not self._free:
                self._free = min(_BLOCK_SAMPLES, self._next_block, self.capacity - self.size)
                self._blocks.append(np.empty(self._free, dtype=np.float32))
                self._next_block = self.capacity
            block = self._blocks[-1]
            start = len(block) - self._free
            take = min(self._free, len(samples))
            block[start : start + take] = samples[:take]
            samples = samples[take:]
            self._free -= take
            self.size += take
        return True

    def to_array(self) -> np.ndarray:
        """The samples as one array; the buffer is empty afterwards."""
        blocks, self._blocks = self._blocks, []
        if len(blocks) == 1:
            block = blocks.pop()
            block.resize(self.size, refcheck=False)  # realloc shrinks in place: nothing is copied
            return block
        if self._reservation is not None:  # the output's pages fill as the blocks are copied and freed
            self._reservation.cover((self.size + min(self.size, _BLOCK_SAMPLES)) * 4)
        joined = np.empty(self.size, dtype=np.float32)
        done = 0
        while blocks:  # free each block once copied: the peak is the output plus one block
            block = blocks.pop(0)
            take = min(len(block), self.size - done)
            joined[done : done + take] = block[:take]
            done += take
            del block
        return joined


def _decode_stream(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    sample_rate: int,
    limits: _Limits,
    declared_s: float | None,
    reservation: AudioReservation | None = None,
) -> np.ndarray:
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    # An honest header sizes the buffer exactly; the rest of the capacity is reserved only if needed.
    expected = math.ceil(declared_s * sample_rate) + sample_rate if declared_s is not None else None
    buffer = _SampleBuffer(limits.capacity, expected, reservation)
    decoded_any = False
    source_s = 0.0
    source_samples = 0

    def keep(frames: list[av.AudioFrame]) -> None:
        for out in frames:
            if not buffer.append(_to_array(out)):
                raise limits.overflow()

    try:
        for frame in container.decode(stream):
            decoded_any = True
            # The rate may change mid-stream: each frame is checked before it is resampled.
            _check_sample_rate(frame.sample_rate)
            source_s += frame.samples / frame.sample_rate
            source_samples += frame.samples
            limits.check(source_s, source_samples)
            keep(resampler.resample(frame))
    except (av.FFmpegError, ValueError) as exc:
        if not decoded_any:
            raise UnsupportedAudioError(
                "The uploaded file is not audio in a format FFmpeg can read.", input="file"
            ) from exc
        logger.warning("audio is damaged after %d decoded samples; keeping what decoded: %s", buffer.size, exc)
    if decoded_any:
        keep(resampler.resample(None))
    return buffer.to_array()


def _to_array(frame: av.AudioFrame) -> np.ndarray:
    # Packed float mono: one plane, one channel.
    return frame.to_ndarray().reshape(-1)
