"""compose.yaml, the local dev loop: its CPU service starts from this checkout's source in the built image and
transcribes (tests/deploy/test_compose_file.py validates the file). Here the service runs on the host's network
instead of publishing its port (Docker has no bridge network on this project's machines): the test drops `ports`
and sets `network_mode: host` in a copy, and changes nothing else."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from bench.containers import docker
from bench.server import ROOT, free_port
from tests.support.audio import JFK_PHRASE

COMPOSE = shutil.which("docker-compose")


def compose(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([COMPOSE or "docker-compose", *args], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def compose_cli() -> str:
    if COMPOSE is None:
        pytest.skip("no docker-compose on the PATH (apt-get install docker-compose)")
    return COMPOSE


@pytest.fixture(scope="module")
def dev_loop(compose_cli: str, docker_ready, cpu_image: str, tmp_path_factory) -> Iterator[str]:
    config = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = config["services"]["speech-to-text"]
    assert service.pop("ports") == ["127.0.0.1:${SERVE_PORT:-3000}:${SERVE_PORT:-3000}"]
    service["network_mode"] = "host"
    config["services"] = {"speech-to-text": service}
    path = tmp_path_factory.mktemp("compose") / "compose.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    project = f"stt-test-{port}"
    env = {"STT_IMAGE": cpu_image, "SERVE_HOST": "127.0.0.1", "SERVE_PORT": str(port)}
    arguments = ["-p", project, "--project-directory", str(ROOT), "-f", str(path)]
    started = compose(*arguments, "up", "-d", env=env)
    try:
        assert started.returncode == 0, started.stderr
        (container,) = compose(*arguments, "ps", "-q", env=env).stdout.split()
        mounts = docker("inspect", container, "--format", "{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}")
        assert f"{ROOT}:/src" in mounts.stdout.split(), "the checkout's source is what it serves"
        yield f"http://127.0.0.1:{port}"
    finally:
        logs = compose(*arguments, "logs", "--no-color", env=env).stdout
        print(logs[-3000:])
        compose(*arguments, "down", "-v", "-t", "30", env=env)


def test_the_dev_loop_serves_the_mounted_source_and_transcribes(dev_loop: str, jfk_path: Path):
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{dev_loop}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    client = openai.OpenAI(base_url=f"{dev_loop}/v1", api_key="not-needed", max_retries=0, timeout=600)
    with jfk_path.open("rb") as f:
        result = client.audio.transcriptions.create(file=f, model="whisper-1")
    assert JFK_PHRASE in result.text.lower().replace(",", "")
