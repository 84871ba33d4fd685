"""The speech corpus in ../shared/audio and word error rate, shared by tests and benchmarks."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jiwer
from whisper_normalizer.english import EnglishTextNormalizer

AUDIO_DIR_ENV = "STT_TEST_AUDIO_DIR"
DEFAULT_AUDIO_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "audio"
SHORT_UTTERANCE_MAX_S = 30.0


@dataclass(frozen=True)
class Utterance:
    path: Path
    lang: str
    duration_s: float
    text: str | None
    channels: int
    sample_rate: int


def audio_dir() -> Path:
    return Path(os.environ.get(AUDIO_DIR_ENV, DEFAULT_AUDIO_DIR))


def load_manifest(directory: Path | None = None) -> list[Utterance]:
    directory = directory or audio_dir()
    items = []
    for line in (directory / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        items.append(
            Utterance(
                path=directory / entry["path"],
                lang=entry["lang"],
                duration_s=float(entry["duration_s"]),
                text=entry.get("text"),
                channels=int(entry.get("channels", 1)),
                sample_rate=int(entry.get("sample_rate", 16000)),
            )
        )
    return items


def english_short_utterances(directory: Path | None = None) -> list[Utterance]:
    """Single-speaker English recordings (``en/``) with a transcript, at most 30 s long."""
    return [
        u
        for u in load_manifest(directory)
        if u.path.parent.name == "en" and u.text and u.duration_s <= SHORT_UTTERANCE_MAX_S
    ]


@lru_cache(maxsize=1)
def _normalizer() -> EnglishTextNormalizer:
    return EnglishTextNormalizer()


def normalize(text: str) -> str:
    return " ".join(_normalizer()(text).split())


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER (0..1+) after Whisper's English normalization."""
    refs = [normalize(r) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    return jiwer.wer(refs, hyps)
