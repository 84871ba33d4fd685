"""A run and its resume, on a scripted executor."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from bulk.executors.base import Done, ExecutorStats, Failed, GaveUp, Outcome
from bulk.manifest import Item
from bulk.outputs import FAILURES_FILE, Outputs
from bulk.runner import run_bulk
from bulk.sharding import Shard
from bulk.summary import SUMMARY_FILE, summary_name


class ScriptedExecutor:
    """Done for every item, but Failed for ids starting with "bad", GaveUp for "flaky"; raises after ``die_after``
    outcomes (a killed runner). Records the items it was given."""

    name = "scripted"

    def __init__(self, die_after: int | None = None) -> None:
        self.stats = ExecutorStats()
        self.die_after = die_after
        self.given: list[str] = []

    def run(self, items: Sequence[Item]) -> Iterator[Outcome]:
        for number, item in enumerate(items):
            if self.die_after is not None and number == self.die_after:
                raise KeyboardInterrupt
            self.given.append(item.id)
            if item.id.startswith("bad"):
                yield Failed(item, 400, {"error": {"message": "not audio"}}, "w1")
            elif item.id.startswith("flaky"):
                yield GaveUp(item, "503 everywhere", 30)
            else:
                self.stats.per_worker["w1"] = self.stats.per_worker.get("w1", 0) + 1
                yield Done(item, {"text": f"text of {item.id}"}, f"text of {item.id}", 1.5, "w1")

    def close(self) -> None:
        pass


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    ids = [f"item/{i}" for i in range(10)] + ["bad-1", "flaky-1"]
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps({"id": i, "audio": f"{i}.wav"}) + "\n" for i in ids))
    return path


def test_a_run_records_each_outcome_and_summarises(tmp_path: Path, manifest: Path):
    out = tmp_path / "out"
    summary = run_bulk(manifest, out, ScriptedExecutor(), progress=False)
    assert (summary.done, summary.failed, summary.gave_up, summary.skipped) == (10, 1, 1, 0)
    assert summary.audio_s == 15.0 and not summary.complete
    assert len(Outputs(out).result_files()) == 10
    assert [json.loads(line)["id"] for line in (out / FAILURES_FILE).read_text().splitlines()] == ["bad-1"]
    written = json.loads(Outputs(out).path_for("item/3").read_text())
    assert written["text"] == "text of item/3" and written["response"] == {"text": "text of item/3"}
    assert json.loads((out / SUMMARY_FILE).read_text())["done"] == 10
    assert "Not complete" in summary.render()


def test_the_same_command_again_runs_only_what_is_left(tmp_path: Path, manifest: Path):
    out = tmp_path / "out"
    run_bulk(manifest, out, ScriptedExecutor(), progress=False)
    again = ScriptedExecutor()
    summary = run_bulk(manifest, out, again, progress=False)
    assert again.given == ["flaky-1"] and summary.skipped == 11
    assert len((out / FAILURES_FILE).read_text().splitlines()) == 1


def test_a_killed_run_loses_only_what_was_in_flight_and_the_rerun_finishes_exactly_once(tmp_path: Path,
                                                                                          manifest: Path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_bulk(manifest, out, ScriptedExecutor(die_after=4), progress=False)
    assert len(Outputs(out).result_files()) == 4
    again = ScriptedExecutor()
    run_bulk(manifest, out, again, progress=False)
    assert len(again.given) == 8  # the 6 items left, the bad one and the flaky one
    files = Outputs(out).result_files()
    assert len(files) == 10 and len({json.loads(f.read_text())["id"] for f in files}) == 10
    assert Outputs(out).temporaries() == []


def test_a_shard_runs_only_its_items_and_writes_its_own_summary(tmp_path: Path, manifest: Path):
    out = tmp_path / "out"
    shards = [Shard(index, 3) for index in range(3)]
    given = []
    for shard in shards:
        executor = ScriptedExecutor()
        summary = run_bulk(manifest, out, executor, progress=False, shard=shard)
        assert all(shard.holds(Item(id=i, audio="x")) for i in executor.given)
        assert summary.items == len(executor.given)
        assert json.loads((out / summary_name(shard)).read_text())["items"] == summary.items
        given += executor.given
    assert sorted(given) == sorted([f"item/{i}" for i in range(10)] + ["bad-1", "flaky-1"])  # each id in one shard
    assert not (out / SUMMARY_FILE).exists()
    assert [json.loads(line)["id"] for line in (out / FAILURES_FILE).read_text().splitlines()] == ["bad-1"]
