"""Docker as the container tests use it: the base image or its stand-in, the images built with
deploy/build-image.sh, code run in them, and a stand-in PyTorch CPU index served from this machine's wheel."""

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
from pathlib import Path

from bench.containers import DOCKER, docker
from bench.server import ROOT

BUILD_IMAGE = ROOT / "deploy" / "build-image.sh"
STANDIN_BASE = ROOT / "tests" / "container" / "build_standin_base.sh"
BASE_IMAGE = "python:3.11-slim"
UNBAKED_SECRET = "hf_do_not_bake_into_the_image"
"""In the build's environment as HF_TOKEN: it must appear nowhere in the image."""
TORCH_CPU_INDEX_PORT = 39427
"""The stand-in index's port. Its URL is a build argument of the CPU image's dependency layer, so a port that
changed from run to run would rebuild that layer (about 10 minutes here) instead of taking it from Docker's cache."""


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

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
            pass

    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", TORCH_CPU_INDEX_PORT), Handler)
    except OSError:  # the port is taken: any free one (the build then misses Docker's cache for that layer)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        shutil.rmtree(root, ignore_errors=True)
