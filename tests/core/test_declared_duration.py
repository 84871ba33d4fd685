from __future__ import annotations

import io

import pytest

from bench.audio_files import encode
from core.audio import SAMPLE_RATE, open_audio
from tests.support.audio import tone


def _declared_s(source) -> float | None:
    with open_audio(source) as upload:
        return upload.declared_s


def test_the_duration_a_file_declares_is_read_before_decoding(wav_bytes, tmp_path):
    assert _declared_s(io.BytesIO(wav_bytes(3.0))) == pytest.approx(3.0, abs=0.01)
    flac = encode(tone(2.5, 220.0, SAMPLE_RATE), SAMPLE_RATE, tmp_path / "a.flac", "flac")
    assert _declared_s(flac) == pytest.approx(2.5, abs=0.01)
    assert _declared_s(str(flac)) == pytest.approx(2.5, abs=0.01)


def test_no_declared_duration_when_the_file_states_none(tmp_path):
    # A raw MP3 stream's duration is FFmpeg's guess from its first frame's bitrate: not a declared one.
    mp3 = encode(tone(2.0, 220.0, SAMPLE_RATE), SAMPLE_RATE, tmp_path / "a.mp3", "libmp3lame")
    assert _declared_s(mp3) is None
