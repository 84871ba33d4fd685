from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.audio import SAMPLE_RATE, decode_audio, is_silent
from core.errors import ErrorKind, InvalidInputError, TooLargeError, UnsupportedAudioError
from bench.audio_files import encode


def _tone(seconds: float, sample_rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_every_corpus_file_decodes_to_16k_mono_float32_of_the_right_length(manifest):
    for item in manifest:
        audio = decode_audio(item.path)
        assert audio.dtype == np.float32 and audio.ndim == 1, item.path
        # MP3 header durations are estimates: allow 1% on long files.
        assert abs(len(audio) / SAMPLE_RATE - item.duration_s) < max(0.1, 0.01 * item.duration_s), item.path
        assert np.abs(audio).max() < 2.0, "samples are normalized floats, not integer PCM"


@pytest.mark.parametrize(
    ("suffix", "codec"),
    [("ogg", "libopus"), ("opus", "libopus"), ("webm", "libopus"), ("m4a", "aac"), ("mp4", "aac"),
     ("mp3", "libmp3lame"), ("flac", "flac"), ("wav", "pcm_s16le")],
)
def test_containers_and_codecs_made_here_decode(tmp_path: Path, suffix: str, codec: str):
    path = encode(_tone(2.0, 48_000), 48_000, tmp_path / f"tone.{suffix}", codec)
    audio = decode_audio(path)
    assert abs(len(audio) / SAMPLE_RATE - 2.0) < 0.1
    # A 440 Hz tone keeps its pitch through resampling: the spectrum peaks at 440 Hz.
    spectrum = np.abs(np.fft.rfft(audio[: SAMPLE_RATE]))
    assert abs(np.argmax(spectrum) - 440) <= 2


def test_stereo_is_downmixed(tmp_path: Path):
    left = _tone(1.0, 44_100)
    path = encode(np.stack([left, left]), 44_100, tmp_path / "stereo.wav", "pcm_f32le", channels=2)
    audio = decode_audio(path)
    assert audio.ndim == 1 and abs(len(audio) - SAMPLE_RATE) < 50
    assert 0.3 < np.abs(audio).max() <= 1.0


def test_extension_does_not_matter(tmp_path: Path, jfk_path: Path):
    renamed = tmp_path / "recording.txt"
    renamed.write_bytes(jfk_path.read_bytes())
    assert len(decode_audio(renamed)) == len(decode_audio(jfk_path))


def test_empty_file_is_a_bad_request(tmp_path: Path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInputError) as info:
        decode_audio(empty)
    assert info.value.kind is ErrorKind.INVALID_INPUT and info.value.input == "file"


@pytest.mark.parametrize(
    "content",
    [b"hello, this is not audio\n" * 50, bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8))],
    ids=["text", "random-bytes"],
)
def test_non_audio_is_unsupported_media(tmp_path: Path, content: bytes):
    path = tmp_path / "upload.wav"
    path.write_bytes(content)
    with pytest.raises(UnsupportedAudioError) as info:
        decode_audio(path)
    assert info.value.kind is ErrorKind.UNSUPPORTED_MEDIA


def test_zip_archive_is_unsupported_media(tmp_path: Path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "not audio")
    path = tmp_path / "upload.mp3"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(UnsupportedAudioError):
        decode_audio(path)


def test_truncated_file_yields_the_part_that_decodes(tmp_path: Path, jfk_path: Path):
    data = jfk_path.read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(data[: len(data) // 2])
    audio = decode_audio(cut)
    full = decode_audio(jfk_path)
    assert 0.3 * len(full) < len(audio) < 0.7 * len(full)


def test_audio_longer_than_the_limit_is_refused(jfk_path: Path):
    with pytest.raises(TooLargeError) as info:
        decode_audio(jfk_path, max_duration_s=5)
    assert info.value.kind is ErrorKind.TOO_LARGE and "5 seconds" in info.value.message
    assert len(decode_audio(jfk_path, max_duration_s=12)) == len(decode_audio(jfk_path))


def test_file_objects_decode_like_paths(jfk_path: Path):
    with jfk_path.open("rb") as f:
        assert len(decode_audio(f)) == len(decode_audio(jfk_path))
    empty = io.BytesIO(b"")
    with pytest.raises(InvalidInputError):
        decode_audio(empty)


def test_a_valid_file_with_zero_samples_decodes_to_nothing(tmp_path: Path):
    import wave

    path = tmp_path / "zero.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(b"")
    audio = decode_audio(path)
    assert audio.size == 0 and is_silent(audio)


def test_silence_detection(jfk_audio):
    assert is_silent(np.zeros(16_000, dtype=np.float32))
    assert is_silent(np.full(16_000, 1e-4, dtype=np.float32))
    assert not is_silent(jfk_audio)
