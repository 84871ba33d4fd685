"""The ``/v1`` app in process, built by the app factory on stand-in engines (``tests/fakes.py``: each clip comes
back as "asr heard N.Ns", the diarizer hears two speakers, a chat model answers) and mounted at ``/v1`` as the
service mounts it. A test module gives the app other collaborators by overriding ``collaborators``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import openai
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from pipeline.chat import Chat
from server.collaborators import Collaborators, RouteSettings, bind
from server.openai_app import create_openai_app
from tests.fakes import FakeModels
from tests.support.transcribers import chat_transcriber


@pytest.fixture
def collaborators(fake_models: FakeModels) -> Collaborators:
    transcriber = chat_transcriber(fake_models)
    return Collaborators(transcriber=transcriber, chat=Chat(transcriber))


@pytest.fixture
def v1_app(collaborators: Collaborators) -> FastAPI:
    return create_openai_app(collaborators)


@pytest.fixture
def use_route_settings(v1_app: FastAPI, collaborators: Collaborators) -> Callable[[RouteSettings], None]:
    """Gives the routes other settings (a request deadline) for the rest of the test."""
    return lambda settings: bind(v1_app, replace(collaborators, route_settings=settings))


@pytest.fixture
def mounted(v1_app: FastAPI) -> Starlette:
    """The ``/v1`` app at ``/v1``, as the service mounts it."""
    return Starlette(routes=[Mount("/v1", app=v1_app)])


@pytest.fixture
def http(mounted: Starlette) -> Iterator[TestClient]:
    with TestClient(mounted) as client:
        yield client


@pytest.fixture
def sdk(http: TestClient) -> openai.OpenAI:
    """The official client on the in-process app: it parses every body and event into the ``openai`` package's
    own types, and raises its typed errors."""
    return openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=http, max_retries=0)
