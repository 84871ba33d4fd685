"""Docker for the benchmarks and the container tests: the CLI, and a container of the image run as users run it,
on the host's network and bound to 127.0.0.1 (Docker has no bridge network on this project's machines)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from bench.server import free_port

DOCKER = shutil.which("docker")


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([DOCKER or "docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


@dataclass
class Container:
    name: str
    url: str

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def inspect(self, template: str) -> str:
        return docker("inspect", self.name, "--format", template).stdout.strip()

    def wait_until_ready(self, timeout_s: float = 600) -> float:
        """Seconds from now until /readyz answers 200."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.inspect("{{.State.Running}}") != "true":
                raise AssertionError(f"{self.name} exited:\n{self.logs()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"{self.name} not ready after {timeout_s} s:\n{self.logs()[-4000:]}")


def serve_args(port: int) -> list[str]:
    """The image's entrypoint passes options to `bentoml serve`: on the host's network, loopback only."""
    return ["--host", "127.0.0.1", "--port", str(port)]


@contextmanager
def running_container(tag: str, volume: str, *docker_options: str, port: int | None = None) -> Iterator[Container]:
    """`docker run` as users run it, on the host's network: read-only root, a tmpfs for /tmp, the Hugging Face
    cache as a named volume. Removed afterwards."""
    port = port or free_port()
    name = f"stt-test-{port}"
    docker("run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp:rw,size=2g",
           "-v", f"{volume}:/root/.cache/huggingface", *docker_options, tag, *serve_args(port))
    try:
        yield Container(name, f"http://127.0.0.1:{port}")
    finally:
        docker("rm", "-f", "-v", name, check=False)
