from __future__ import annotations

import io

import pytest

from bench.audio_files import encode
from core.audio import SAMPLE_RATE, declared_duration_s
from tests.support.audio import tone


def test_the_duration_a_file_declares_is_read_without_decoding(wav_bytes, tmp_path):
    upload = io.BytesIO(wav_bytes(3.0))
    upload.read(10)
    assert declared_duration_s(upload) == pytest.approx(3.0, abs=0.01)
    assert upload.tell() == 0, "the file object is rewound for the decoder"
    flac = encode(tone(2.5, 220.0, SAMPLE_RATE), SAMPLE_RATE, tmp_path / "a.flac", "flac")
    assert declared_duration_s(flac) == pytest.approx(2.5, abs=0.01)
    assert declared_duration_s(str(flac)) == pytest.approx(2.5, abs=0.01)


def test_no_duration_when_the_file_states_none_or_is_not_audio(tmp_path):
    assert declared_duration_s(io.BytesIO(b"not audio at all")) is None
    assert declared_duration_s(tmp_path / "missing.wav") is None
    # A raw MP3 stream's duration is FFmpeg's guess from its first frame's bitrate: not a declared one.
    mp3 = encode(tone(2.0, 220.0, SAMPLE_RATE), SAMPLE_RATE, tmp_path / "a.mp3", "libmp3lame")
    assert declared_duration_s(mp3) is None
