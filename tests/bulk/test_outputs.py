from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bulk import outputs as outputs_module
from bulk.manifest import Item
from bulk.outputs import FAILURES_FILE, Outputs, RunDefaults, file_name, fingerprint


def test_a_safe_id_is_its_own_file_name_and_any_other_id_gets_a_distinct_safe_one():
    assert file_name("call-0001.en") == "call-0001.en.json"
    odd = ["a/b", "a_b", "../../etc/passwd", "x" * 500, "dup~", "ünïcode", ".hidden", "a b", "x.tmp"]
    names = [file_name(i) for i in odd]
    assert len(set(names)) == len(names)
    for name in names:
        assert "/" not in name and not name.startswith(".") and len(name) <= 100 and name.endswith(".json")


def test_the_fingerprint_covers_the_audio_the_model_and_every_option():
    base = Item(id="a", audio="a.wav")
    same = Item(id="a", audio="a.wav")
    assert fingerprint(base) == fingerprint(same)
    for changed in ({"audio": "b.wav"}, {"model": "tiny-en"}, {"language": "en"}, {"prompt": "p"},
                    {"task": "translate"}, {"response_format": "text"}, {"diarize": True}, {"num_speakers": 2}):
        assert fingerprint(base.model_copy(update=changed)) != fingerprint(base), changed


def test_the_schema_version_is_in_the_fingerprint(monkeypatch: pytest.MonkeyPatch):
    item = Item(id="a", audio="a.wav")
    before = fingerprint(item)
    monkeypatch.setattr(outputs_module, "SCHEMA_VERSION", outputs_module.SCHEMA_VERSION + 1)
    assert fingerprint(item) != before


def test_run_defaults_fill_what_an_item_leaves_out_and_diarize_asks_for_speakers():
    defaults = RunDefaults(model="tiny-en", response_format="verbose_json")
    assert defaults.apply(Item(id="a", audio="a")).model == "tiny-en"
    assert defaults.apply(Item(id="a", audio="a", model="freds0")).model == "freds0"
    assert defaults.apply(Item(id="a", audio="a", diarize=True)).response_format == "diarized_json"
    assert defaults.apply(Item(id="a", audio="a", diarize=True, response_format="jsonl")).response_format == "jsonl"


def test_a_result_is_written_whole_with_its_id_and_fingerprint_and_resumes(tmp_path: Path):
    outputs = Outputs(tmp_path)
    item = Item(id="a/b", audio="x.wav")
    assert not outputs.is_finished(item)
    path = outputs.write_result(item, {"text": "hello"})
    written = json.loads(path.read_text())
    assert written["id"] == "a/b" and written["fingerprint"] == fingerprint(item) and written["text"] == "hello"
    assert outputs.temporaries() == [] and outputs.result_files() == [path]
    assert Outputs(tmp_path).is_finished(item)
    assert not Outputs(tmp_path).is_finished(item.model_copy(update={"language": "en"}))  # other work: redone


def test_a_damaged_result_file_is_not_finished(tmp_path: Path):
    outputs = Outputs(tmp_path)
    item = Item(id="a", audio="x.wav")
    outputs.path_for("a").parent.mkdir(parents=True)
    outputs.path_for("a").write_text('{"id": "a", "finger')
    assert not outputs.is_finished(item)


def test_a_failure_is_recorded_once_and_never_retried_while_its_fingerprint_holds(tmp_path: Path):
    outputs = Outputs(tmp_path)
    item = Item(id="bad", audio="x.txt")
    assert outputs.record_failure(item, 400, {"error": {"message": "not audio"}})
    assert not outputs.record_failure(item, 400, {"error": {"message": "not audio"}})
    with (tmp_path / FAILURES_FILE).open("a") as failures:
        failures.write('{"id": "cut sh')  # a runner killed mid-line
    again = Outputs(tmp_path)
    assert again.is_finished(item) and not again.record_failure(item, 400, {})
    lines = (tmp_path / FAILURES_FILE).read_text().splitlines()
    assert sum(json.loads(line)["id"] == "bad" for line in lines[:-1]) == 1
    assert not again.is_finished(item.model_copy(update={"model": "other"}))


def test_pending_is_what_has_neither_result_nor_failure(tmp_path: Path):
    outputs = Outputs(tmp_path)
    items = [Item(id=str(i), audio=f"{i}.wav") for i in range(4)]
    outputs.write_result(items[0], {})
    outputs.record_failure(items[2], 400, {})
    assert [i.id for i in outputs.pending(items)] == ["1", "3"]


def test_a_dead_runners_temporary_files_are_removed_and_a_live_ones_kept(tmp_path: Path):
    outputs = Outputs(tmp_path)
    folder = outputs.path_for("a").parent
    folder.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = outputs_module._HOST
    leftover = folder / f".a.{host}-{int(dead.stdout)}.abc123.tmp"
    ours = folder / f".b.{host}-{os.getpid()}.def456.tmp"
    other_host_fresh = folder / ".c.elsewhere-1.ghi789.tmp"
    other_host_stale = folder / ".d.elsewhere-1.jkl012.tmp"
    for path in (leftover, ours, other_host_fresh, other_host_stale):
        path.write_text("{")
    old = time.time() - outputs_module.STALE_TEMPORARY_S - 10
    os.utime(other_host_stale, (old, old))
    assert sorted(outputs.remove_leftover_temporaries()) == sorted([leftover, other_host_stale])
    assert outputs.temporaries() == sorted([ours, other_host_fresh])
