"""The GPU image (`make image`) run as users run it, here on CPU: `docker run` on the host's network with the
Hugging Face cache as a named volume, a read-only root filesystem and a tmpfs for /tmp. It becomes ready,
transcribes and diarizes through the OpenAI SDK, exposes its metrics, runs as a non-root user, stops cleanly on
SIGTERM, and a second container on the same volume starts with no network at all."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from bench.containers import Container, docker, running_container, serve_args
from bench.server import ROOT, free_port
from tests.container.docker import BASE_IMAGE, UNBAKED_SECRET
from tests.support.audio import JFK_PHRASE

TWO_PARTY_CALL = "multi/pyannote_sample.wav"
STOP_GRACE_S = 30
RUNTIME_SECRET = "hf_runtime_only_secret"


@pytest.fixture(scope="module")
def served(gpu_image: str, cache_volume: str) -> Iterator[Container]:
    with running_container(gpu_image, cache_volume, "-e", f"HF_TOKEN={RUNTIME_SECRET}") as container:
        seconds = container.wait_until_ready()
        print(f"\n{gpu_image} ready in {seconds:.1f} s")
        yield container


@pytest.fixture(scope="module")
def sdk(served: Container) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{served.url}/v1", api_key="not-needed", max_retries=0, timeout=600)


def test_it_runs_on_a_read_only_root_as_a_non_root_user(served: Container):
    assert served.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"
    assert served.inspect("{{.Config.User}}") == "1034:1034"
    processes = docker("top", served.name, "-eo", "pid,uid,args").stdout.splitlines()[1:]
    assert processes and all(line.split()[1] == "1034" for line in processes), processes


def test_the_openai_sdk_transcribes_the_jfk_clip(sdk: openai.OpenAI, jfk_path: Path):
    with jfk_path.open("rb") as f:
        result = sdk.audio.transcriptions.create(file=f, model="whisper-1")
    assert JFK_PHRASE in result.text.lower().replace(",", "")


def test_the_openai_sdk_diarizes_a_two_party_call(sdk: openai.OpenAI, corpus_dir: Path):
    with (corpus_dir / TWO_PARTY_CALL).open("rb") as f:
        result = sdk.audio.transcriptions.create(file=f, model="whisper-1", response_format="diarized_json")
    assert len({segment.speaker for segment in result.segments}) >= 2
    assert len(result.text.split()) > 20


def test_metrics_answer_with_the_gauge_the_autoscaler_reads(served: Container):
    metrics = httpx.get(f"{served.url}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert "stt_requests_total" in metrics.text
    trigger = yaml.safe_load((ROOT / "deploy" / "k8s" / "autoscaling.yaml").read_text())["spec"]["triggers"][0]
    gauge, labels = trigger["metadata"]["query"].split("(", 1)[1].rstrip(")").split("{", 1)
    samples = [line for line in metrics.text.splitlines() if line.startswith(gauge + "{")]
    assert samples, f"deploy/k8s/autoscaling.yaml reads {gauge}, which /metrics lacks"
    name, pattern = labels.rstrip("}").split("=~")
    service_names = {line.split(f'{name}="', 1)[1].split('"', 1)[0] for line in samples}
    assert all(re.fullmatch(pattern.strip('"'), service) for service in service_names), service_names


def _environment(image: str) -> list[str]:
    return json.loads(docker("image", "inspect", image, "--format", "{{json .Config.Env}}").stdout)


def test_no_secret_is_in_the_images_history_or_environment(gpu_image: str, served: Container):
    history = docker("history", "--no-trunc", gpu_image).stdout
    config = docker("image", "inspect", gpu_image).stdout
    assert UNBAKED_SECRET not in history and UNBAKED_SECRET not in config
    assert RUNTIME_SECRET not in history and RUNTIME_SECRET not in config
    image_env = set(_environment(gpu_image)) - set(_environment(BASE_IMAGE))
    assert not [env for env in image_env if env.startswith(("HF_TOKEN=", "STT_API_KEYS=", "UV_"))], image_env
    assert RUNTIME_SECRET not in served.logs()


def test_a_second_container_on_the_same_volume_starts_with_no_network(gpu_image: str, cache_volume: str,
                                                                       served: Container):
    """No network at all (not even the host's): anything the start tried to download would fail it."""
    name = f"stt-test-offline-{free_port()}"
    docker("run", "-d", "--name", name, "--network", "none", "--read-only", "--tmpfs", "/tmp:rw,size=2g",
           "-v", f"{cache_volume}:/root/.cache/huggingface", gpu_image, *serve_args(3000))
    try:
        check = (
            "import time, urllib.request\n"
            "deadline = time.monotonic() + 600\n"
            "while True:\n"
            "    try:\n"
            "        print(urllib.request.urlopen('http://127.0.0.1:3000/readyz', timeout=2).status); break\n"
            "    except Exception:\n"
            "        assert time.monotonic() < deadline; time.sleep(0.5)\n"
        )
        result = docker("exec", name, "python", "-c", check, timeout=660)
        assert result.stdout.strip() == "200"
    finally:
        logs = docker("logs", name, check=False)
        docker("rm", "-f", name, check=False)
    assert "Traceback" not in logs.stdout + logs.stderr


def test_docker_stop_ends_it_cleanly_within_the_grace_period_and_unloads_the_models(served: Container):
    started = time.monotonic()
    docker("stop", "-t", str(STOP_GRACE_S), served.name, timeout=STOP_GRACE_S + 30)
    print(f"\ndocker stop took {time.monotonic() - started:.1f} s")
    assert served.inspect("{{.State.ExitCode}}") == "0", "137 would mean SIGKILL after the grace period"
    logs = served.logs()
    assert "(shutdown)" in logs and "unloaded" in logs, logs[-3000:]
