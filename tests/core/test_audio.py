from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.audio import GROWTH_BYTES, MAX_EXPANSION, SAMPLE_RATE, decode_audio, open_audio
from core.audio_memory import AudioMemoryBudget
from core.errors import ErrorKind, InvalidInputError, OverloadedError, TooLargeError, UnsupportedAudioError
from bench.audio_files import encode, encode_silence
from tests.support.audio import tone


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
    path = encode(tone(2.0, 440, 48_000, amplitude=0.5), 48_000, tmp_path / f"tone.{suffix}", codec)
    audio = decode_audio(path)
    assert abs(len(audio) / SAMPLE_RATE - 2.0) < 0.1
    # A 440 Hz tone keeps its pitch through resampling: the spectrum peaks at 440 Hz.
    spectrum = np.abs(np.fft.rfft(audio[: SAMPLE_RATE]))
    assert abs(np.argmax(spectrum) - 440) <= 2


def test_stereo_is_downmixed(tmp_path: Path):
    left = tone(1.0, 440, 44_100, amplitude=0.5)
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
    assert audio.size == 0 and audio.dtype == np.float32


# Decode bombs: a few kilobytes that describe hours of audio, or a rate that resampling multiplies.
# Each is decoded in a fresh interpreter, whose peak RSS (C allocations included) and time are measured.
MEASURE_DECODE = """
import io, json, sys, time, wave
from core.audio import decode_audio

def kib(field):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field))

warm_up = io.BytesIO()  # FFmpeg's codecs and the resampler start outside the measurement
with wave.open(warm_up, "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000); w.writeframes(bytes(16000))
decode_audio(warm_up)
path, limit = sys.argv[1], None if sys.argv[2] == "none" else float(sys.argv[2])
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # restart the peak RSS (VmHWM) from the current RSS
before = kib("VmRSS:")
started = time.perf_counter()
try:
    outcome = {"samples": len(decode_audio(path, max_duration_s=limit))}
except Exception as exc:
    outcome = {"error": type(exc).__name__, "code": getattr(exc, "code", None), "message": str(exc)}
outcome["seconds"] = time.perf_counter() - started
outcome["rss_growth_mb"] = (kib("VmHWM:") - before) / 1024
print(json.dumps(outcome))
"""
ROOT = Path(__file__).resolve().parents[2]
SERVER_LIMIT_S = 4 * 3600  # the server's default max_audio_duration_s
MB = 2**20
SMALL_MB = 32  # what a refusal before decoding may cost: measured 3 to 5 MB


def _decode_measured(path: Path, max_duration_s: float | None) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE_DECODE, str(path), "none" if max_duration_s is None else str(max_duration_s)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _silence(path: Path, sample_rate: int, seconds: float, block_size: int | None = None, codec: str = "flac",
             declare_duration: bool = True) -> Path:
    samples = max(1, int(sample_rate * seconds))
    return encode_silence(path, sample_rate, samples, codec, block_size, declare_duration)


RATE_BOMBS = {
    # name: (sample rate, seconds, block size, codec)
    "1 Hz flac, 2.5 hours in 9 KB": (1, 9000, None, "flac"),
    "1 Hz flac, one 32768-sample frame": (1, 32768, 32768, "flac"),
    "100 Hz flac, an hour in 65535-sample frames": (100, 3600, 65535, "flac"),
    "100 Hz wav": (100, 40, None, "pcm_s16le"),
    "2 GHz wav": (2_000_000_000, 2e-6, None, "pcm_s16le"),
}


@pytest.mark.parametrize("name", list(RATE_BOMBS))
def test_an_implausible_sample_rate_is_refused_before_decoding(tmp_path: Path, name: str):
    rate, seconds, block_size, codec = RATE_BOMBS[name]
    path = _silence(tmp_path / ("bomb.flac" if codec == "flac" else "bomb.wav"), rate, seconds, block_size, codec)
    assert path.stat().st_size < 20_000
    outcome = _decode_measured(path, SERVER_LIMIT_S)
    assert outcome.get("error") == "UnsupportedAudioError" and outcome["code"] == "unsupported_sample_rate", outcome
    assert f"{rate} Hz" in outcome["message"]
    assert outcome["seconds"] < 2 and outcome["rss_growth_mb"] < SMALL_MB, outcome


def test_a_declared_duration_over_the_limit_is_refused_before_decoding(tmp_path: Path):
    path = _silence(tmp_path / "hour.flac", 8000, 3600, block_size=65535)  # 14 KB
    outcome = _decode_measured(path, 1800)
    assert outcome.get("error") == "TooLargeError" and outcome["code"] == "audio_too_long", outcome
    assert "1800 seconds" in outcome["message"]
    assert outcome["seconds"] < 2 and outcome["rss_growth_mb"] < SMALL_MB, outcome


def test_with_no_declared_duration_the_limit_holds_on_the_source_timeline(tmp_path: Path):
    path = _silence(tmp_path / "hour.flac", 8000, 3600, block_size=65535, declare_duration=False)
    outcome = _decode_measured(path, 1200)
    assert outcome.get("error") == "TooLargeError" and outcome["code"] == "audio_too_long", outcome
    output_mb = 1200 * SAMPLE_RATE * 4 / MB  # the audio up to the limit, held once
    assert outcome["seconds"] < 2 and outcome["rss_growth_mb"] < output_mb + SMALL_MB, outcome


@pytest.mark.parametrize("declare_duration", [True, False], ids=["declared", "undeclared"])
def test_a_file_expanding_beyond_the_bound_is_refused(tmp_path: Path, declare_duration: bool):
    # An hour of silence in the largest FLAC frames: 14 KB that decode to 230 MB, 16,000 times its size.
    path = _silence(tmp_path / "hour.flac", 8000, 3600, block_size=65535, declare_duration=declare_duration)
    outcome = _decode_measured(path, SERVER_LIMIT_S)
    assert outcome.get("error") == "InvalidInputError" and outcome["code"] == "audio_expansion_too_large", outcome
    assert f"{MAX_EXPANSION} times" in outcome["message"]
    bound_mb = SMALL_MB if declare_duration else MAX_EXPANSION * path.stat().st_size / MB + SMALL_MB
    assert outcome["seconds"] < 2 and outcome["rss_growth_mb"] < bound_mb, outcome


@pytest.mark.parametrize(
    ("sample_rate", "block_size"), [(16_000, 4096), (8000, 4608)], ids=["16k-flac-4096", "8k-flac-4608"]
)
def test_an_hour_of_silence_from_a_standard_encoder_decodes_in_about_its_output_size(
    tmp_path: Path, sample_rate: int, block_size: int
):
    # Legitimate and the most compressed: 1,220 and 2,640 times smaller than what it decodes to.
    path = _silence(tmp_path / "quiet.flac", sample_rate, 3600, block_size=block_size)
    output_mb = 3600 * SAMPLE_RATE * 4 / MB
    assert output_mb * MB / path.stat().st_size < MAX_EXPANSION / 3
    outcome = _decode_measured(path, SERVER_LIMIT_S)
    assert outcome.get("samples") == 3600 * SAMPLE_RATE, outcome
    assert outcome["rss_growth_mb"] < output_mb + SMALL_MB, outcome  # the output once, not twice


def test_short_silence_never_meets_the_expansion_bound(tmp_path: Path):
    # 8 s in one 65,535-sample frame: 60 bytes of FLAC decode to 8,700 times their size, within the floor.
    path = _silence(tmp_path / "one-frame.flac", 8000, 8, block_size=65535)
    assert len(decode_audio(path)) == 8 * SAMPLE_RATE


def test_the_buffer_joins_blocks_when_the_audio_outgrows_one(monkeypatch, jfk_path: Path, jfk_audio: np.ndarray):
    monkeypatch.setattr("core.audio._BLOCK_SAMPLES", 10_000)
    assert np.array_equal(decode_audio(jfk_path), jfk_audio)
    assert np.array_equal(decode_audio(jfk_path, max_duration_s=12), jfk_audio)


# The audio memory budget: what an upload will take is known from its header, and the decode stays within what
# its reservation holds.


def test_the_header_tells_what_the_audio_will_take(tmp_path: Path):
    declared = _silence(tmp_path / "declared.flac", 8000, 600, block_size=4096)
    with open_audio(declared) as upload:
        assert upload.expected_bytes == (600 + 1) * SAMPLE_RATE * 4  # at 16 kHz, and a second of slack
    undeclared = _silence(tmp_path / "undeclared.flac", 8000, 600, block_size=4096, declare_duration=False)
    with open_audio(undeclared) as upload:
        assert upload.expected_bytes == GROWTH_BYTES  # a first step
    with open_audio(undeclared, max_duration_s=60) as upload:
        assert upload.expected_bytes == (60 + 1) * SAMPLE_RATE * 4  # the step, within what the limit allows


def test_a_decoded_upload_holds_its_reservation_until_the_audio_is_freed(jfk_path: Path, jfk_audio: np.ndarray):
    budget = AudioMemoryBudget(64 * MB)
    with open_audio(jfk_path) as upload:
        reservation = budget.reserve(upload.expected_bytes)
        audio = upload.decode(reservation)
    assert np.array_equal(audio, jfk_audio) and budget.held_bytes == audio.nbytes
    del audio
    assert budget.held_bytes == 0


def test_a_decode_that_outgrows_its_reservation_takes_more(tmp_path: Path):
    # Ten minutes with no duration in the header: 38 MB, three steps of 16 MiB.
    path = _silence(tmp_path / "undeclared.flac", 16_000, 600, block_size=4096, declare_duration=False)
    budget = AudioMemoryBudget(64 * MB)
    with open_audio(path) as upload:
        audio = upload.decode(budget.reserve(upload.expected_bytes))
    assert audio.size == 600 * SAMPLE_RATE and budget.held_bytes == audio.nbytes


@pytest.mark.parametrize(
    ("limit_mb", "taken_mb", "error"), [(20, 0, TooLargeError), (64, 40, OverloadedError)],
    ids=["more than the whole budget", "more than is free"],
)
def test_a_decode_that_cannot_grow_stops_and_gives_its_reservation_back(
    tmp_path: Path, limit_mb: int, taken_mb: int, error: type
):
    path = _silence(tmp_path / "undeclared.flac", 16_000, 600, block_size=4096, declare_duration=False)
    budget = AudioMemoryBudget(limit_mb * MB, wait_s=0.05)
    budget.reserve(taken_mb * MB)
    with open_audio(path) as upload:
        reservation = budget.reserve(upload.expected_bytes)
        with pytest.raises(error):
            upload.decode(reservation)
    assert budget.held_bytes == taken_mb * MB


def test_a_decode_that_fails_gives_its_reservation_back(tmp_path: Path):
    path = _silence(tmp_path / "undeclared.flac", 16_000, 120, block_size=4096, declare_duration=False)
    budget = AudioMemoryBudget(64 * MB)
    with open_audio(path, max_duration_s=60) as upload:
        reservation = budget.reserve(upload.expected_bytes)
        with pytest.raises(TooLargeError):
            upload.decode(reservation)
    assert budget.held_bytes == 0
