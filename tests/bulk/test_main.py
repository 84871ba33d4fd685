from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bulk.__main__ import main


def test_a_bad_manifest_exits_2_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": "a"}\n')
    assert main(["run", str(manifest), "--out", str(tmp_path / "out"), "--server", "http://127.0.0.1:9",
                 "--no-progress"]) == 2
    assert f"{manifest}:1: audio" in capsys.readouterr().err


def test_http_needs_a_server(tmp_path: Path):
    with pytest.raises(SystemExit, match="--server"):
        main(["run", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "out")])


def test_items_whose_audio_is_missing_fail_for_good_and_the_run_is_complete(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": "a", "audio": "/no/such.wav"}\n')
    assert main(["run", str(manifest), "--out", str(tmp_path / "out"), "--server", "http://127.0.0.1:9",
                 "--no-progress"]) == 0
    assert "1 failed for good" in capsys.readouterr().out


def test_sigterm_stops_the_run_keeping_what_finished(tmp_path: Path, wav_bytes):
    """A runner told to stop exits 130 with the finished items written whole; the next run does the rest."""
    class SlowReplica(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(0.3)
            body = json.dumps({"text": "ok", "duration": 1.0}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    replica = ThreadingHTTPServer(("127.0.0.1", 0), SlowReplica)
    threading.Thread(target=replica.serve_forever, daemon=True).start()
    audio = tmp_path / "a.wav"
    audio.write_bytes(wav_bytes(seconds=1.0))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"id": f"i{n}", "audio": str(audio)}) + "\n" for n in range(40)))
    command = [sys.executable, "-m", "bulk", "run", str(manifest), "--out", str(tmp_path / "out"), "--server",
               f"http://127.0.0.1:{replica.server_address[1]}", "--per-replica-inflight", "1", "--no-progress"]
    try:
        runner = subprocess.Popen(command, cwd=Path(__file__).parents[2], stderr=subprocess.PIPE, text=True)
        results = tmp_path / "out" / "results"
        deadline = time.monotonic() + 60
        while len(list(results.glob("*/*.json"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(runner.pid, signal.SIGTERM)
        assert runner.wait(30) == 130 and "run the same command again" in runner.stderr.read()
        finished = len(list(results.glob("*/*.json")))
        assert 3 <= finished < 40 and not list(results.glob("*/.*.tmp"))
        rerun = subprocess.run(command, cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0 and f"{40 - finished} done, {finished} skipped" in rerun.stdout
    finally:
        replica.shutdown()
        replica.server_close()


def test_slurm_without_its_commands_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": "a", "audio": "a.wav"}\n')
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    assert main(["run", str(manifest), "--out", str(tmp_path / "out"), "--executor", "slurm", "--no-progress"]) == 3
    assert "sbatch not found" in capsys.readouterr().err
