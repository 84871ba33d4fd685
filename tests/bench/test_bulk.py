"""The bulk benchmark's manifest and result readers (the end-to-end tests count on them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.bulk import UNKNOWN_MODEL, results, write_manifest
from bench.corpus import Utterance


def utterance(tmp_path: Path, name: str) -> Utterance:
    return Utterance(tmp_path / f"{name}.wav", "en", 2.0, "text", 1, 16_000)


def test_the_manifest_cycles_the_utterances_and_spreads_the_bad_entries(tmp_path: Path, corpus_dir: Path):
    manifest = write_manifest(tmp_path / "m.jsonl", [utterance(tmp_path, "a"), utterance(tmp_path, "b")], 10)
    lines = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert len(manifest.good_ids) == 10 and len(set(manifest.good_ids)) == 10 and "/" in manifest.good_ids[0]
    assert [line["id"] for line in lines if line["id"] in manifest.bad_ids] == manifest.bad_ids
    positions = [i for i, line in enumerate(lines) if line["id"] in manifest.bad_ids]
    assert positions[0] > 0 and positions[-1] < len(lines) - 1
    assert next(line for line in lines if line["id"] == "unknown-model")["model"] == UNKNOWN_MODEL
    assert write_manifest(tmp_path / "n.jsonl", [utterance(tmp_path, "a")], 3, bad_entries=False).bad_ids == []


def test_two_result_files_for_one_id_are_caught(tmp_path: Path):
    for shard, name in (("aa", "x.json"), ("bb", "y.json")):
        (tmp_path / "results" / shard).mkdir(parents=True)
        (tmp_path / "results" / shard / name).write_text(json.dumps({"id": "same"}))
    with pytest.raises(AssertionError, match="two result files"):
        results(tmp_path)
