from __future__ import annotations

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
