"""Runs a real ``bentoml serve`` process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
BENTOML = Path(sys.executable).parent / "bentoml"
PROCESS_FILE_OF_ONNXRUNTIME = ".ses"


@dataclass
class RunningServer:
    url: str
    tmp_dir: Path
    log_path: Path
    process: subprocess.Popen

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the server as a crash would: its arbiter and every worker it started. Circus puts its workers in
        process groups of their own, so killing the arbiter's group alone leaves them serving on the inherited
        socket (and, with the jobs on, claiming batch lines)."""
        _kill_tree(self.process)

    def leftover_files(self) -> list[Path]:
        """Files under the server's TMPDIR, other than sockets and onnxruntime's one per-process ``.ses``
        file (written once when the first ONNX session, Silero VAD, starts; never one per request)."""
        return sorted(
            p
            for p in self.tmp_dir.rglob("*")
            if p.is_file() and not p.is_socket() and p.relative_to(self.tmp_dir) != Path(PROCESS_FILE_OF_ONNXRUNTIME)
        )

    def wait_for_leftovers(self, expected: list[Path], timeout_s: float = 5.0) -> list[Path]:
        """Leftover files once the last request's clean-up ran (BentoML runs it just after responding)."""
        deadline = time.monotonic() + timeout_s
        while (files := self.leftover_files()) != expected and time.monotonic() < deadline:
            time.sleep(0.1)
        return files


def metric_total(metrics_text: str, sample_name: str, **labels: str) -> float:
    """Sum of the Prometheus samples called ``sample_name`` whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(
    env: dict[str, str] | None = None,
    startup_timeout_s: float = 240,
    wait_for: str = "/readyz",
    port: int | None = None,
    cpus: Sequence[int] | None = None,
) -> Iterator[RunningServer]:
    """A ``bentoml serve`` process, once ``wait_for`` answers 200 (``/livez`` for a server not meant to be ready);
    on ``port`` (a restarted replica keeps its URL) and pinned to ``cpus`` (``taskset``) when given."""
    port = port or free_port()
    work_dir = Path(tempfile.mkdtemp(prefix="stt-e2e-"))
    tmp_dir = work_dir / "tmp"
    tmp_dir.mkdir()
    log_path = work_dir / "server.log"
    server_env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(work_dir / "hf-home"),
        "BENTOML_HOME": str(work_dir / "bentoml-home"),
        "TMPDIR": str(tmp_dir),
        "BENTOML_DO_NOT_TRACK": "True",
        **(env or {}),
    }
    with log_path.open("wb") as log:
        pinned = ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []
        process = subprocess.Popen(
            [*pinned, str(BENTOML), "serve", "service:SpeechToText", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RunningServer(f"http://127.0.0.1:{port}", tmp_dir, log_path, process)
    try:
        _wait_until_ready(server, startup_timeout_s, wait_for)
        yield server
    finally:
        _stop(process)


def _wait_until_ready(server: RunningServer, timeout_s: float, route: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {server.process.returncode}:\n{server.log()[-4000:]}")
        try:
            if httpx.get(f"{server.url}{route}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"server not ready after {timeout_s}s:\n{server.log()[-4000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        _kill_tree(process)


def _kill_tree(process: subprocess.Popen) -> None:
    try:
        arbiter = psutil.Process(process.pid)
        processes = [arbiter, *arbiter.children(recursive=True)]
    except psutil.NoSuchProcess:
        processes = []
    for each in processes:
        try:
            each.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=30)
    process.wait(30)
