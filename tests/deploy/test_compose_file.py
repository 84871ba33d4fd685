"""compose.yaml (the local dev loop) is valid for Debian's docker-compose, with and without its GPU profile, and
only the GPU service reserves GPUs. tests/container starts it."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from bench.server import ROOT

COMPOSE = shutil.which("docker-compose")


@pytest.mark.parametrize("profile", [[], ["--profile", "gpu"]], ids=["cpu", "gpu"])
def test_docker_compose_validates_it(profile: list[str]):
    if COMPOSE is None:
        pytest.skip("no docker-compose on the PATH (apt-get install docker-compose; .ci/run does)")
    result = subprocess.run([COMPOSE, *profile, "-f", "compose.yaml", "config", "-q"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_gpu_service_reserves_the_gpus_and_the_cpu_service_none():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    devices = services["speech-to-text-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert services["speech-to-text-gpu"]["profiles"] == ["gpu"] and "deploy" not in services["speech-to-text"]


def test_it_serves_the_mounted_source_with_reload_and_keeps_the_cache_in_a_volume():
    config = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = config["services"]["speech-to-text"]
    assert service["entrypoint"][:4] == ["bentoml", "serve", "service:SpeechToText", "--reload"]
    assert service["working_dir"] == "/src" and ".:/src:ro" in service["volumes"]
    hf_home = next(env["value"] for env in yaml.safe_load((ROOT / "bentofile.yaml").read_text())["envs"]
                   if env["name"] == "HF_HOME")
    assert f"hf-cache:{hf_home}" in service["volumes"] and "hf-cache" in config["volumes"]


def test_the_batch_apis_jobs_are_kept_in_a_volume():
    config = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = config["services"]["speech-to-text"]
    assert "jobs:/data/jobs" in service["volumes"] and "jobs" in config["volumes"]
    assert "STT_JOBS_DIR=/data/jobs" in service["environment"]
