"""The pyannote engine is optional: without the package it must fail clearly, not at import."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from core.model_files import HubAccess
from core.registry import ModelSpec
from strategies.base import RuntimeContext
from strategies.diarization.embedded import EmbeddedDiarizer
from strategies.diarization.factory import create_diarizer
from strategies.diarization.pyannote_engine import PyannoteDiarizer


@pytest.fixture
def no_pyannote(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyannote", None)
    monkeypatch.setitem(sys.modules, "pyannote.audio", None)


def test_load_without_pyannote_names_the_model_and_the_cache(no_pyannote, tmp_path):
    diarizer = PyannoteDiarizer(model="pyannote/speaker-diarization-3.1", cache_dir=str(tmp_path))
    with pytest.raises(RuntimeError) as caught:
        diarizer.load()
    message = str(caught.value)
    assert "pyannote/speaker-diarization-3.1" in message
    assert "pyannote.audio" in message
    assert "Hugging Face cache" in message and str(tmp_path) in message
    assert not diarizer.is_loaded
    with pytest.raises(RuntimeError):
        diarizer.diarize(np.zeros(16_000, dtype=np.float32))


def test_factory_builds_each_engine_without_loading(no_pyannote):
    runtime = RuntimeContext("cpu", HubAccess(token="hf_x"))
    embedded = create_diarizer(ModelSpec(id="d1", engine="embedded_diarizer", model="embedded:x"), runtime)
    pyannote = create_diarizer(ModelSpec(id="d2", engine="pyannote", model="org/pipeline"), runtime)
    assert isinstance(embedded, EmbeddedDiarizer) and not embedded.is_loaded
    assert isinstance(pyannote, PyannoteDiarizer) and pyannote.model == "org/pipeline" and pyannote.token == "hf_x"
    assert embedded.memory_bytes() > 1_000_000, "before loading, the size of the encoder's weights file"
    with pytest.raises(ValueError, match="not a diarization engine"):
        create_diarizer(ModelSpec(id="asr", engine="ctranslate2", model="x"), runtime)


def test_known_speakers_are_refused_clearly_without_loading(no_pyannote):
    from core.errors import InvalidInputError

    diarizer = PyannoteDiarizer()
    assert diarizer.same_voice_similarity is None
    with pytest.raises(InvalidInputError) as caught:
        diarizer.embed_voice(np.zeros(3 * 16_000, dtype=np.float32))
    assert caught.value.input == "known_speaker_names" and "embedded diarizer" in caught.value.message
    assert not diarizer.is_loaded
