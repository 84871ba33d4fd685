"""Docker as the container tests use it: the CLI, images built with deploy/build-image.sh, containers run on the
host's network and bound to 127.0.0.1, and a stand-in PyTorch CPU index served from this machine's wheel."""

from __future__ import annotations

import glob
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.server import ROOT, free_port

DOCKER = shutil.which("docker")
BUILD_IMAGE = ROOT / "deploy" / "build-image.sh"
STANDIN_BASE = ROOT / "tests" / "container" / "build_standin_base.sh"
BASE_IMAGE = "python:3.11-slim"
UNBAKED_SECRET = "hf_do_not_bake_into_the_image"
"""In the build's environment as HF_TOKEN: it must appear nowhere in the image."""


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([DOCKER or "docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def why_docker_cannot_run() -> str | None:
    """None where the Docker daemon answers, else why not."""
    if DOCKER is None:
        return "no docker CLI on the PATH (apt-get install docker.io, then start dockerd)"
    try:
        result = subprocess.run([DOCKER, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                                timeout=30)
    except subprocess.TimeoutExpired:
        return "the Docker daemon did not answer `docker info` within 30 s"
    if result.returncode != 0:
        return f"the Docker daemon cannot be reached: {result.stderr.strip()[:300]}"
    return None


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False).returncode == 0


def ensure_base_image() -> str | None:
    """The Bento's base image, the real one or else the local stand-in (built here); None if it is there, else why
    it cannot be."""
    if image_exists(BASE_IMAGE):
        return None
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        return f"{BASE_IMAGE} is not there and its stand-in needs root and debootstrap ({STANDIN_BASE})"
    result = subprocess.run([str(STANDIN_BASE)], capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise AssertionError(f"the stand-in base did not build:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return None


def build_image(variant: str, bentoml_home: Path, *containerize_options: str) -> tuple[str, float]:
    """deploy/build-image.sh with this environment's bentoml, a token in the environment that must not be baked in;
    (the image's tag, seconds the build took)."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "BENTOML_HOME": str(bentoml_home),
        "BENTOML_DO_NOT_TRACK": "True",
        "DOCKER_BUILDKIT": "0",
        "HF_TOKEN": UNBAKED_SECRET,
    }
    started = time.monotonic()
    result = subprocess.run([str(BUILD_IMAGE), variant, "--opt", "network=host", *containerize_options], env=env,
                            capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise AssertionError(f"{BUILD_IMAGE} {variant} failed:\n{result.stdout[-6000:]}{result.stderr[-6000:]}")
    return f"speech-to-text:{variant}", time.monotonic() - started


def image_size_bytes(tag: str) -> int:
    return int(docker("image", "inspect", tag, "--format", "{{.Size}}").stdout)


def run_in_image(tag: str, code: str, *docker_options: str, timeout: float = 300) -> str:
    """Runs Python code in a new container of the image (as its user, read-only root, no network); its stdout."""
    result = docker("run", "--rm", "--read-only", "--network", "none", *docker_options, "--entrypoint",
                    "/app/.venv/bin/python", tag, "-c", code, timeout=timeout)
    return result.stdout


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


def local_torch_cpu_wheel(version: str) -> Path | None:
    """This machine's torch CPU wheel (pip's find-links here), the stand-in for PyTorch's CPU index."""
    folders = [p for p in os.environ.get("PIP_FIND_LINKS", "").split() if os.path.isdir(p)] + ["/opt/wheels"]
    for folder in folders:
        matches = sorted(glob.glob(os.path.join(folder, f"torch-{version}+cpu-cp311-*linux*_x86_64.whl")))
        if matches:
            return Path(matches[0])
    return None


@contextmanager
def torch_cpu_index(wheel: Path) -> Iterator[str]:
    """A PEP 503 index on 127.0.0.1 that holds one project, torch, with the given wheel; its URL."""
    root = Path(os.environ.get("TMPDIR", "/tmp")) / f"torch-cpu-index-{os.getpid()}"
    (root / "simple" / "torch").mkdir(parents=True, exist_ok=True)
    link = root / wheel.name
    if not link.exists():
        link.symlink_to(wheel)
    quoted = wheel.name.replace("+", "%2B")
    (root / "simple" / "torch" / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="../../{quoted}">{wheel.name}</a></body></html>\n'
    )
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        shutil.rmtree(root, ignore_errors=True)
