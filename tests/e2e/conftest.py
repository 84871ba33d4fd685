"""The end-to-end modules' clients: ``sdk`` (the official ``openai`` client) and ``http`` on the module's server.
That is the shared ``server`` unless a module names its own by overriding ``target_server``, and ``api_key`` when
that server asks for one."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import httpx
import openai
import pytest

from bench.bulk import REPLICA_ENV, bulk_command, results, write_manifest
from bench.corpus import Utterance
from bench.server import ROOT, RunningServer


@pytest.fixture(scope="module")
def target_server(server: RunningServer) -> RunningServer:
    return server


@pytest.fixture(scope="module")
def api_key() -> str | None:
    return None


@pytest.fixture(scope="module")
def sdk(target_server: RunningServer, api_key: str | None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{target_server.url}/v1", api_key=api_key or "not-needed", max_retries=0, timeout=300
    )


@pytest.fixture(scope="module")
def http(target_server: RunningServer, api_key: str | None) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=target_server.url, timeout=300, headers=headers) as client:
        yield client


@pytest.fixture(scope="session")
def inprocess_texts(tmp_path_factory: pytest.TempPathFactory, english_short: list[Utterance]) -> dict[str, str]:
    """The reference for the bulk executors: each short English utterance's text from one ``--executor inprocess``
    run (the manifests of the bulk tests cycle over these files, so a text depends on the audio alone), by audio
    path. Run once per session, whichever executor's test asks first."""
    work = tmp_path_factory.mktemp("bulk-reference")
    manifest = write_manifest(work / "manifest.jsonl", english_short, len(english_short), bad_entries=False)
    done = subprocess.run(bulk_command(manifest.path, work / "out", "inprocess"), cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1", **REPLICA_ENV})
    assert done.returncode == 0, done.stdout + done.stderr
    return {entry["audio"]: entry["text"] for entry in results(work / "out").values()}
