"""The speech corpus in ../shared/audio and word error rate, shared by tests and benchmarks."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jiwer
import numpy as np
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


def assemble(utterances: list[Utterance], min_seconds: float, gap_s: float = 0.5) -> tuple[np.ndarray, list[str]]:
    """One long 16 kHz recording: utterances back to back (short silences between) until ``min_seconds``.

    Returns the samples and the reference of each utterance in order.
    """
    from core.audio import SAMPLE_RATE, decode_audio

    gap = np.zeros(int(gap_s * SAMPLE_RATE), dtype=np.float32)
    pieces, references, total = [], [], 0.0
    while total < min_seconds and utterances:
        for utterance in utterances:
            pieces += [decode_audio(utterance.path), gap]
            references.append(utterance.text or "")
            total += utterance.duration_s + gap_s
            if total >= min_seconds:
                break
    return (np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)), references


def utterance_coverage(references: list[str], hypothesis: str) -> list[float]:
    """For each reference utterance, in order, the share of its words that the hypothesis reproduces.

    The joined references are aligned to the hypothesis word by word (an order-preserving alignment),
    so an utterance whose text is missing, or appears out of place, scores low.
    """
    spans, words = [], []
    for reference in references:
        ref_words = normalize(reference).split()
        spans.append((len(words), len(words) + len(ref_words)))
        words += ref_words
    hits = np.zeros(len(words), dtype=bool)
    alignment = jiwer.process_words(" ".join(words), normalize(hypothesis) or "<empty>")
    for chunk in alignment.alignments[0]:
        if chunk.type == "equal":
            hits[chunk.ref_start_idx : chunk.ref_end_idx] = True
    return [float(hits[start:end].mean()) if end > start else 1.0 for start, end in spans]
