from __future__ import annotations

import json
from pathlib import Path

from bulk.__main__ import main
from bulk.manifest import Item
from bulk.outputs import Outputs
from bulk.status import folder_status


def test_the_status_is_read_from_the_folder_alone(tmp_path: Path):
    items = [Item(id=f"i{n}", audio=f"{n}.wav") for n in range(6)]
    outputs = Outputs(tmp_path)
    outputs.write_result(items[0], {"text": "a"})
    outputs.write_result(items[1].model_copy(update={"language": "en"}), {"text": "other work"})  # not this item's
    Outputs(tmp_path).record_failure(items[2], 400, {})  # another runner's failure
    found = folder_status(outputs, items)
    assert (found.done, found.failed, [i.id for i in found.pending]) == (1, 1, ["i1", "i3", "i4", "i5"])
    assert not found.complete
    assert sum(len(v) for v in found.pending_by_shard(3).values()) == 4


def test_the_status_command_exits_0_only_when_complete(tmp_path: Path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "audio": "a.wav"}) + "\n" + json.dumps({"id": "b", "audio": "b.wav"}))
    out = tmp_path / "out"
    Outputs(out).write_result(Item(id="a", audio="a.wav", response_format="verbose_json"), {"text": "a"})
    assert main(["status", str(manifest), "--out", str(out), "--tasks", "2"]) == 1
    printed = capsys.readouterr().out
    assert "2 items: 1 done, 0 failed for good, 1 pending" in printed and "pending" in printed
    Outputs(out).record_failure(Item(id="b", audio="b.wav", response_format="verbose_json"), 400, {})
    assert main(["status", str(manifest), "--out", str(out)]) == 0
    assert "Complete." in capsys.readouterr().out
