"""The images, built once a session with deploy/build-image.sh on the real base image or its local stand-in, and
the cache volume. Every test here skips, saying why, where Docker cannot run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from importlib.metadata import version

import pytest

from bench.containers import docker
from tests.container.docker import (
    build_image,
    ensure_base_image,
    image_size_bytes,
    local_torch_cpu_wheel,
    torch_cpu_index,
    why_docker_cannot_run,
)


@pytest.fixture(scope="session")
def docker_ready() -> None:
    reason = why_docker_cannot_run() or ensure_base_image()
    if reason:
        pytest.skip(f"Docker cannot run the image here: {reason}")


@pytest.fixture(scope="session")
def gpu_image(docker_ready, tmp_path_factory) -> str:
    """speech-to-text:gpu (bentofile.yaml), built now (Docker's layer cache keeps a rebuild short)."""
    tag, seconds = build_image("gpu", tmp_path_factory.mktemp("bentoml-home"))
    print(f"\n{tag}: built in {seconds:.0f} s, {image_size_bytes(tag) / 1e9:.2f} GB")
    return tag


@pytest.fixture(scope="session")
def cpu_image(docker_ready, tmp_path_factory) -> str:
    """speech-to-text:cpu (bentofile.cpu.yaml). Here PyTorch's CPU index is a stand-in on 127.0.0.1 holding this
    machine's torch CPU wheel (the registry reachable here is PyPI only); users build from the real index."""
    wheel = local_torch_cpu_wheel(version("torch").split("+")[0])
    if wheel is None and not os.environ.get("STT_IMAGE_USE_PYTORCH_INDEX"):
        pytest.skip("no torch CPU wheel on this machine to stand in for PyTorch's CPU index "
                    "(set STT_IMAGE_USE_PYTORCH_INDEX=1 to build from the real index)")
    home = tmp_path_factory.mktemp("bentoml-home")
    if wheel is None:
        tag, seconds = build_image("cpu", home)
    else:
        with torch_cpu_index(wheel) as index:
            tag, seconds = build_image("cpu", home, "--opt", f"build-arg=UV_EXTRA_INDEX_URL={index}")
    print(f"\n{tag}: built in {seconds:.0f} s, {image_size_bytes(tag) / 1e9:.2f} GB")
    return tag


@pytest.fixture(scope="module")
def cache_volume(docker_ready) -> Iterator[str]:
    """A new named volume for the Hugging Face cache, as a user's first `docker run -v hf-cache:...` makes."""
    name = f"stt-test-hf-cache-{uuid.uuid4().hex[:8]}"
    docker("volume", "create", name)
    yield name
    docker("volume", "rm", "-f", name, check=False)

