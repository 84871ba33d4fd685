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


def test_a_failure_is_recorded_once_in_its_own_file_and_never_retried_while_its_fingerprint_holds(tmp_path: Path):
    outputs = Outputs(tmp_path)
    item = Item(id="bad/one", audio="x.txt")
    assert outputs.record_failure(item, 400, {"error": {"message": "not audio"}})
    assert not outputs.record_failure(item, 400, {"error": {"message": "not audio"}})
    assert [json.loads(p.read_text())["id"] for p in outputs.failure_files()] == ["bad/one"]
    again = Outputs(tmp_path)  # the next run
    assert again.is_finished(item) and not again.record_failure(item, 400, {})
    assert len(again.failure_files()) == 1 and again.temporaries() == []
    other_model = item.model_copy(update={"model": "other"})
    assert not again.is_finished(other_model)
    assert again.record_failure(other_model, 404, {})  # other work: recorded over the old fingerprint
    assert [json.loads(p.read_text())["fingerprint"] for p in again.failure_files()] == [fingerprint(other_model)]


def test_the_index_is_rebuilt_whole_from_the_failure_files_sorted_by_id(tmp_path: Path):
    outputs = Outputs(tmp_path)
    for item_id in ("b", "a/x", "c"):
        outputs.record_failure(Item(id=item_id, audio=f"{item_id}.txt"), 400, {"error": {"message": item_id}})
    assert not (tmp_path / FAILURES_FILE).exists()  # written at the end of a run, not appended to
    outputs.rebuild_failures_index()
    lines = [json.loads(line) for line in (tmp_path / FAILURES_FILE).read_text().splitlines()]
    assert [line["id"] for line in lines] == ["a/x", "b", "c"]
    assert lines[0] == {"id": "a/x", "fingerprint": fingerprint(Item(id="a/x", audio="a/x.txt")), "audio": "a/x.txt",
                        "status": 400, "error": {"error": {"message": "a/x"}}}
    assert outputs.temporaries() == []


def test_deleting_a_failure_file_runs_its_item_again_even_before_the_index_is_rebuilt(tmp_path: Path):
    outputs = Outputs(tmp_path)
    item = Item(id="bad", audio="x.txt")
    outputs.record_failure(item, 400, {})
    outputs.rebuild_failures_index()
    outputs.failure_path_for("bad").unlink()
    assert not Outputs(tmp_path).is_finished(item)


def test_an_index_of_an_earlier_version_is_carried_over_into_failure_files(tmp_path: Path):
    item = Item(id="bad", audio="x.txt")
    line = json.dumps({"id": "bad", "fingerprint": fingerprint(item), "audio": "x.txt", "status": 400, "error": {}})
    (tmp_path / FAILURES_FILE).write_text(line + '\n{"id": "cut sh')  # the old runner, killed mid-line
    outputs = Outputs(tmp_path)
    assert outputs.is_finished(item) and not outputs.record_failure(item, 400, {})
    assert [json.loads(p.read_text())["id"] for p in outputs.failure_files()] == ["bad"]


RECORD_FAILURES = """
import sys, time
from pathlib import Path
from bulk.manifest import Item
from bulk.outputs import Outputs
root, writer, start = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
outputs = Outputs(root)
time.sleep(max(0.0, start - time.time()))  # every writer starts at once
for number in range(40):
    # Ids of their own and ids every writer shares: each must end recorded once.
    outputs.record_failure(Item(id=f"{writer}-{number}", audio="x.txt"), 400, {"error": {"message": writer}})
    outputs.record_failure(Item(id=f"shared-{number}", audio="x.txt"), 400, {"error": {"message": writer}})
outputs.rebuild_failures_index()
"""


def test_failures_from_several_processes_at_once_are_each_recorded_once_and_indexed_whole(tmp_path: Path):
    start = time.time() + 2.0
    writers = [subprocess.Popen([sys.executable, "-c", RECORD_FAILURES, str(tmp_path), f"w{n}", str(start)],
                                cwd=Path(__file__).resolve().parents[2]) for n in range(4)]
    assert [writer.wait(60) for writer in writers] == [0, 0, 0, 0]
    outputs = Outputs(tmp_path)
    expected = sorted([f"w{n}-{i}" for n in range(4) for i in range(40)] + [f"shared-{i}" for i in range(40)])
    assert sorted(entry["id"] for entry in outputs.failures()) == expected  # one file per id
    assert outputs.temporaries() == []
    outputs.rebuild_failures_index()  # what the last run's end does
    index = [json.loads(line)["id"] for line in (tmp_path / FAILURES_FILE).read_text().splitlines()]
    assert index == sorted(expected)


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
    failure_leftover = outputs.failure_path_for("e").parent / f".e.{host}-{int(dead.stdout)}.mno345.tmp"
    failure_leftover.parent.mkdir(parents=True)
    failure_leftover.write_text("{")
    index_leftover = tmp_path / f".failures.{host}-{int(dead.stdout)}.pqr678.tmp"
    index_leftover.write_text("")
    assert sorted(outputs.remove_leftover_temporaries()) == sorted(
        [leftover, other_host_stale, failure_leftover, index_leftover])
    assert outputs.temporaries() == sorted([ours, other_host_fresh])
