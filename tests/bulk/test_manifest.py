from __future__ import annotations

import json
from pathlib import Path

import pytest

from bulk.manifest import Item, ManifestError, read_manifest


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reads_items_in_order_with_their_options_and_skips_blank_lines(tmp_path: Path):
    path = write(tmp_path, json.dumps({"id": "a", "audio": "a.wav"}), "",
                 json.dumps({"id": "b", "audio": "https://x/b.mp3", "model": "tiny-en", "language": "en",
                             "task": "translate", "response_format": "text", "diarize": True, "num_speakers": 2,
                             "prompt": "names"}))
    items = read_manifest(path)
    assert [i.id for i in items] == ["a", "b"]
    assert items[0] == Item(id="a", audio="a.wav")
    assert items[1].task == "translate" and items[1].num_speakers == 2 and items[1].diarize


def test_every_bad_line_is_reported_with_its_number_before_any_work(tmp_path: Path):
    path = write(tmp_path,
                 json.dumps({"id": "a", "audio": "a.wav"}),
                 "{not json",
                 json.dumps({"id": "b"}),
                 json.dumps({"id": "c", "audio": "c.wav", "colour": "red"}),
                 json.dumps({"id": "a", "audio": "again.wav"}),
                 json.dumps({"id": "d", "audio": "d.wav", "response_format": "docx"}),
                 "[1, 2]")
    with pytest.raises(ManifestError) as raised:
        read_manifest(path)
    lines = {line: reason for line, reason in raised.value.problems}
    assert sorted(lines) == [2, 3, 4, 5, 6, 7]
    assert "not valid JSON" in lines[2]
    assert lines[3].startswith("audio:")
    assert "colour" in lines[4]
    assert "duplicate id 'a' (first on line 1)" in lines[5]
    assert lines[6].startswith("response_format:")
    assert f"{path}:2: not valid JSON" in str(raised.value)


def test_the_options_are_everything_but_the_id_and_the_audio():
    item = Item(id="x", audio="x.wav", language="pt")
    assert "id" not in item.options() and "audio" not in item.options() and item.options()["language"] == "pt"
