"""``/v1/models`` on stand-in engines (``tests/fakes.py``), through the real ``/v1`` app and the official SDK."""

from __future__ import annotations


def test_models_list_the_default_models_alias(sdk):
    cards = {m.id: m for m in sdk.models.list().data}
    assert {"asr", "speech-llm", "speakers", "whisper-1"} <= set(cards)
    assert cards["whisper-1"].model_extra["alias_of"] == "asr" and cards["whisper-1"].model_extra["default"]
    assert "alias_of" not in cards["asr"].model_extra
    assert sdk.models.retrieve("whisper-1").model_extra["alias_of"] == "asr"
