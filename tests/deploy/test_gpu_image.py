"""The GPU image gives each CUDA user the CUDA major it was built for: cuBLAS 12 for CTranslate2 and the loader path
to it, checked on the generated Dockerfile (built offline) and on CTranslate2's own library. tests/container checks
the built image itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = ROOT / "deploy" / "docker-setup.sh"


@pytest.fixture(scope="module")
def dockerfile(bento_dir: Path) -> str:
    return (bento_dir / "env" / "docker" / "Dockerfile").read_text()


def _stages(dockerfile: str) -> dict[str, str]:
    """The Dockerfile's stages by name (deploy/Dockerfile.template: builder, then the image, base-container)."""
    parts = re.split(r"^FROM \S+ AS (\S+)$", dockerfile, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def _env(dockerfile: str, name: str) -> str:
    """The variable's one value, wherever the Dockerfile sets it."""
    (value,) = set(re.findall(rf"^ENV {name}=(.*)$", dockerfile, re.MULTILINE))
    return value.strip()


def _ctranslate2_library() -> bytes:
    import ctranslate2

    libs = Path(ctranslate2.__file__).parent.parent / "ctranslate2.libs"
    (library,) = libs.glob("libctranslate2*.so*")
    return library.read_bytes()


def _cuda_majors(library: bytes, name: str) -> set[str]:
    return {m.decode() for m in re.findall(rb"\b" + name.encode() + rb"\.so\.(\d+)", library)}


def _cublas_pin(script: str) -> tuple[str, str]:
    """The nvidia-cublas-cuNN requirement the setup script installs: (NN, version)."""
    (pin,) = re.findall(r'"nvidia-cublas-cu(\d+)==([\w.]+)"', script)
    return pin


def test_the_builder_runs_the_setup_script_after_installing_the_requirements(bento_dir: Path, dockerfile: str):
    builder = _stages(dockerfile)["builder"]
    assert (bento_dir / "env" / "docker" / "setup_script").read_text() == SETUP_SCRIPT.read_text()
    requirements_at = builder.index("bash ./env/python/install.sh")
    assert requirements_at < builder.index("&& ./env/docker/setup_script"), "cuBLAS joins the environment made"
    assert "setup_script" not in _stages(dockerfile)["base-container"], "the image copies the builder's result"


def test_the_setup_script_installs_cublas_into_the_image_environment_and_checks_the_loader_finds_it(dockerfile: str):
    script = SETUP_SCRIPT.read_text()
    venv = _env(dockerfile, "VIRTUAL_ENV")
    major, _ = _cublas_pin(script)
    assert f'uv pip install --python {venv}/bin/python --no-deps "$CTRANSLATE2_CUBLAS"' in script
    assert f'ctypes.CDLL("libcublas.so.{major}")' in script, "the build fails if the loader cannot find it"


def test_the_loader_path_is_where_nvidia_cublas_puts_its_library_in_the_image_environment(dockerfile: str):
    """nvidia-cublas-cu12 installs nvidia/cublas/lib/libcublas.so.12 (its wheel's RECORD); torch's CUDA 13
    libraries live apart, under nvidia/cu13/lib, and stay off the path."""
    python = yaml.safe_load((ROOT / "bentofile.yaml").read_text())["docker"]["python_version"]
    site_packages = f"{_env(dockerfile, 'VIRTUAL_ENV')}/lib/python{python}/site-packages"
    assert _env(dockerfile, "LD_LIBRARY_PATH").split(":") == [f"{site_packages}/nvidia/cublas/lib"]
    for name, stage in _stages(dockerfile).items():
        assert re.search(r"^ENV LD_LIBRARY_PATH=", stage, re.MULTILINE), f"{name}: the build's check, and run time"


def test_cublas_matches_the_cuda_major_ctranslate2_opens(bento_dir: Path):
    """The library checked is the image's: the Bento pins the version installed here, and PyPI has one Linux
    x86_64 wheel per Python version for it (the same bytes: its sha256 was compared)."""
    requirements = (bento_dir / "env" / "python" / "requirements.txt").read_text()
    assert f"ctranslate2=={version('ctranslate2')}" in requirements.splitlines()
    library = _ctranslate2_library()
    opened = _cuda_majors(library, "libcublas")
    major, _ = _cublas_pin(SETUP_SCRIPT.read_text())
    wanted = "/".join(sorted(opened))
    assert opened == {major}, f"CTranslate2 opens libcublas.so.{wanted}: install nvidia-cublas-cu{wanted} instead"
    assert b"cudnn" not in library.lower(), "CTranslate2 now uses cuDNN: install nvidia-cudnn-cuNN of its major too"
    assert "nvidia-cublas" not in requirements, "cuBLAS 12 is for the image only, not requirements.txt"


def test_torch_comes_from_pypi_with_its_own_cuda_libraries(bento_dir: Path):
    """torch's CUDA major is whatever its PyPI wheel depends on (13 for 2.13.0: cuda-toolkit 13.0.3): no index or
    local version may swap in a build whose libraries the image would then lack."""
    requirements = (bento_dir / "env" / "python" / "requirements.txt").read_text()
    (torch,) = [line for line in requirements.splitlines() if line.startswith("torch")]
    assert re.fullmatch(r"torch==[\d.]+", torch)
    assert "--index-url" not in requirements and "--extra-index-url" not in requirements
    assert not any(name.endswith("-cu13") or name.startswith("nvidia-") for name in requirements.split())


def test_by_default_the_service_asks_for_one_gpu_and_runs_one_worker(bento_dir: Path):
    (service,) = yaml.safe_load((bento_dir / "bento.yaml").read_text())["services"]
    assert service["config"]["resources"] == {"gpu": 1} and service["config"]["workers"] == 1


def _import_service(worker_index: int, **env: str) -> list[str]:
    code = (
        "import bentoml, os\n"
        f"bentoml.server_context.worker_index = {worker_index}\n"
        "import service\n"
        "config = service.SpeechToText.config\n"
        "print(os.environ.get('CUDA_VISIBLE_DEVICES'), service.WORKER_GPU, config['workers'], config['resources'])\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STT_") and k != "CUDA_VISIBLE_DEVICES"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**environ, **env}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(maxsplit=3)


def test_each_worker_is_pinned_to_its_gpu_when_it_imports_the_service():
    """BentoML shows every worker the same CUDA_VISIBLE_DEVICES (resources.gpu) and sets worker_index (1-based)
    before importing service.py: the import narrows it to the worker's GPU."""
    assert _import_service(2, CUDA_VISIBLE_DEVICES="0,1", STT_GPU_COUNT="2") == ["1", "1", "2", "{'gpu': 2}"]
    assert _import_service(3, CUDA_VISIBLE_DEVICES="0,1", STT_GPU_COUNT="2")[:2] == ["0", "0"]
    assert _import_service(2, CUDA_VISIBLE_DEVICES="0,1", STT_DEVICE="cpu")[:2] == ["0,1", "None"]
