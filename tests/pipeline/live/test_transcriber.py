"""The live transcriber every session shares: its partial slots, and the configuration it prepares."""

from __future__ import annotations

import pytest

from pipeline.live import LiveConfig
from tests.pipeline.live.test_session import live_transcriber


def test_partials_are_skipped_while_a_final_decode_waits():
    live = live_transcriber()
    assert live.partial_allowed()
    live._finals = 1
    assert not live.partial_allowed()
    live._finals, live._partials = 0, 2
    assert not live.partial_allowed()


def test_unknown_model_is_refused_when_the_session_is_configured():
    live = live_transcriber()
    with pytest.raises(Exception) as missing:
        live.prepare(LiveConfig(model_id="nope"))
    assert getattr(missing.value, "code", "") == "model_not_found"
