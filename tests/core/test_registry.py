from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.errors import ErrorKind, InvalidInputError, ModelNotFoundError
from core.registry import ModelRegistry, ModelSpec
from server.settings import PROJECT_ROOT


def test_shipped_registry_has_the_required_entries():
    registry = ModelRegistry.from_file(PROJECT_ROOT / "models.yaml")
    assert {"tiny-en", "freds0", "whisper-large-v3-turbo"} <= set(registry.ids())
    tiny = registry.get("tiny-en")
    assert (tiny.engine, tiny.model, tiny.preload) == ("ctranslate2", "embedded:tiny.en", True)
    assert registry.get("freds0").model == "freds0/distil-whisper-large-v3-ptbr"
    assert registry.get("whisper-large-v3-turbo").engine == "transformers"
    # LiteASR ships commented out: its remote code may only run at a commit the operator reviewed.
    assert [s.id for s in registry if s.trust_remote_code] == []
    assert "lite-whisper-large-v3-acc" in (PROJECT_ROOT / "models.yaml").read_text()


def test_remote_code_from_the_hub_must_pin_a_commit():
    for revision in (None, "main", "v1.0", "abc123"):
        with pytest.raises(ValidationError, match="pin the reviewed commit"):
            ModelSpec(id="lite", engine="remote_code", model="efficient-speech/lite-whisper-large-v3-acc",
                      revision=revision, trust_remote_code=True)
    pinned = ModelSpec(id="lite", engine="remote_code", model="efficient-speech/lite-whisper-large-v3-acc",
                       revision="0123456789abcdef0123456789abcdef01234567", trust_remote_code=True)
    assert pinned.revision and pinned.trust_remote_code


def test_remote_code_in_a_local_directory_is_the_operators_own_copy(tmp_path: Path):
    assert ModelSpec(id="lite", engine="remote_code", model=str(tmp_path), trust_remote_code=True).revision is None


def test_unknown_id_is_404_listing_valid_ids():
    registry = ModelRegistry([ModelSpec(id="a", engine="ctranslate2", model="x"), ModelSpec(id="b", engine="transformers", model="y")])
    with pytest.raises(ModelNotFoundError) as info:
        registry.get("../etc/passwd")
    assert info.value.kind is ErrorKind.NOT_FOUND and info.value.input == "model"
    assert "Valid models: a, b" in info.value.message


def test_remote_code_engine_requires_the_operators_consent():
    with pytest.raises(ValidationError, match="trust_remote_code"):
        ModelSpec(id="lite", engine="remote_code", model="some/repo")


@pytest.mark.parametrize("bad_id", ["../x", "a/b", "", "has space", "-leading"])
def test_ids_cannot_look_like_paths(bad_id: str):
    with pytest.raises(ValidationError):
        ModelSpec(id=bad_id, engine="ctranslate2", model="x")


def test_unknown_fields_and_duplicates_are_rejected(tmp_path: Path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("models:\n  - {id: a, engine: ctranslate2, model: x, preloaad: true}\n")
    with pytest.raises(ValidationError):
        ModelRegistry.from_file(typo)
    dup = tmp_path / "dup.yaml"
    dup.write_text("models:\n  - {id: a, engine: ctranslate2, model: x}\n  - {id: a, engine: ctranslate2, model: y}\n")
    with pytest.raises(ValueError, match="duplicate"):
        ModelRegistry.from_file(dup)


def test_a_model_of_another_kind_is_refused_listing_the_models_of_the_kinds_asked_for():
    registry = ModelRegistry(
        [
            ModelSpec(id="asr", engine="ctranslate2", model="x"),
            ModelSpec(id="llm", engine="speech_llm", model="y"),
            ModelSpec(id="speakers", engine="embedded_diarizer", model="z"),
        ]
    )
    assert registry.get("llm", kind=("chat", "transcription")).id == "llm"
    assert registry.ids(("chat", "transcription")) == ["asr", "llm"]
    with pytest.raises(InvalidInputError) as one:
        registry.get("speakers", kind="transcription")
    assert one.value.message == (
        "The model 'speakers' is a diarization model, not a transcription model. Valid models: asr."
    )
    with pytest.raises(InvalidInputError) as several:
        registry.get("speakers", kind=("chat", "transcription"))
    assert "not a chat or transcription model. Valid models: asr, llm." in several.value.message
    with pytest.raises(InvalidInputError) as purpose:
        registry.get("speakers", kind=("chat", "transcription"), purpose="answer a chat")
    assert purpose.value.message == (
        "The model 'speakers' is a diarization model: it cannot answer a chat. Valid models: asr, llm."
    )
    with pytest.raises(ModelNotFoundError) as missing:
        registry.get("nope", kind=("chat", "transcription"))
    assert missing.value.message == "The model 'nope' does not exist. Valid models: asr, llm."
