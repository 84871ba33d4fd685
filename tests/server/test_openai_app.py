"""``server/openai_app.py`` and ``server/collaborators.py``: each app built by the factory works with its own
collaborators, bound at creation or later (as the service binds them when it starts)."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from server.collaborators import Collaborators, RouteSettings, bind
from server.openai_app import create_openai_app
from tests.support.transcribers import chat_transcriber


def _client(app) -> TestClient:
    return TestClient(Starlette(routes=[Mount("/v1", app=app)]))


def test_each_app_has_its_own_collaborators(fake_models):
    admin_on = RouteSettings(admin_api=True)
    admin = create_openai_app(Collaborators(transcriber=chat_transcriber(fake_models), route_settings=admin_on))
    plain = create_openai_app(Collaborators(transcriber=chat_transcriber(fake_models)))
    with _client(admin) as client:
        assert client.post("/v1/admin/models/asr/unload").status_code == 200
    with _client(plain) as client:
        assert client.post("/v1/admin/models/asr/unload").status_code == 404


def test_collaborators_bound_after_creation_serve_the_routes(fake_models):
    app = create_openai_app()
    with _client(app) as client:
        with pytest.raises(RuntimeError, match="has not bound a transcriber"):
            client.get("/v1/models")
        bind(app, Collaborators(transcriber=chat_transcriber(fake_models)))
        assert "whisper-1" in {card["id"] for card in client.get("/v1/models").json()["data"]}
