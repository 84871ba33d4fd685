"""The largest WebSocket message uvicorn reads becomes the service's setting."""

from __future__ import annotations

import pytest
import uvicorn
import uvicorn.config

from server.edge.websocket_limits import limit_websocket_messages


@pytest.fixture
def restored_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn's Config as it was, once the test is over."""
    monkeypatch.setattr(uvicorn.config.Config, "__init__", uvicorn.config.Config.__init__)


def app(scope, receive, send):  # pragma: no cover - never called
    raise AssertionError


def test_every_config_built_afterwards_reads_messages_up_to_the_limit(restored_uvicorn):
    assert uvicorn.Config(app=app).ws_max_size == 16 * 2**20  # uvicorn's own default
    limit_websocket_messages(4 * 2**20)
    assert uvicorn.Config(app=app).ws_max_size == 4 * 2**20
    assert uvicorn.Config(app=app, ws_max_size=1000).ws_max_size == 1000  # a config that names its own keeps it


def test_setting_it_again_replaces_the_limit_without_wrapping_twice(restored_uvicorn):
    original = uvicorn.config.Config.__init__
    limit_websocket_messages(2**20)
    limit_websocket_messages(3 * 2**20)
    assert uvicorn.Config(app=app).ws_max_size == 3 * 2**20
    assert uvicorn.config.Config.__init__.__wrapped__ is original
