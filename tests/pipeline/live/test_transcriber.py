"""The live transcriber every session shares: its partial slots, and the configuration it prepares."""

from __future__ import annotations

import pytest

from core.types import TranscribeOptions
from pipeline.live import LiveConfig
from pipeline.preparation import prepare
from tests.support.transcribers import live_transcriber


def test_partials_are_skipped_while_a_final_decode_waits(fake_models):
    live = live_transcriber(fake_models)
    assert live.partial_allowed()
    live._finals = 1
    assert not live.partial_allowed()
    live._finals, live._partials = 0, 2
    assert not live.partial_allowed()


def test_unknown_model_is_refused_when_the_session_is_configured(fake_models):
    live = live_transcriber(fake_models)
    with pytest.raises(Exception) as missing:
        live.prepare(LiveConfig(model_id="nope"))
    assert getattr(missing.value, "code", "") == "model_not_found"


def test_a_configuration_is_prepared_as_a_file_request_is(fake_models):
    live = live_transcriber(fake_models)
    config = LiveConfig(language="Portuguese", prompt="Olá", logprobs=True)
    asked = TranscribeOptions(language="Portuguese", initial_prompt="Olá", logprobs=True)
    assert live.prepare(config) == prepare(live.pool, None, "talker", asked)
    assert live.prepare(config).options.language == "pt" and live.prepare(LiveConfig()).options.language == "en"
