from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from bulk.manifest import Item
from bulk.sharding import Shard, shard_of


def test_an_id_belongs_to_sha256_mod_n():
    assert shard_of("call/0001", 4) == int(hashlib.sha256(b"call/0001").hexdigest(), 16) % 4
    assert shard_of("anything", 1) == 0


def test_shards_are_the_same_in_another_process_whatever_its_hash_seed():
    ids = [f"{n:05d}/utt" for n in range(50)]
    code = f"from bulk.sharding import shard_of; print([shard_of(i, 4) for i in {ids!r}])"
    elsewhere = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                               env={"PYTHONHASHSEED": "123"}, cwd=Path(__file__).resolve().parents[2])
    assert elsewhere.stdout.strip() == str([shard_of(i, 4) for i in ids])


def test_the_shards_of_n_split_a_manifest_without_overlap_and_roughly_evenly():
    items = [Item(id=f"{n:05d}/utt", audio="a.wav") for n in range(400)]
    selected = [Shard(index, 4).select(items) for index in range(4)]
    assert sorted(i.id for part in selected for i in part) == sorted(i.id for i in items)
    assert all(60 <= len(part) <= 140 for part in selected), [len(part) for part in selected]


@pytest.mark.parametrize("text", ["4/4", "-1/4", "1", "a/b", "0/0"])
def test_a_bad_shard_is_refused(text: str):
    with pytest.raises(ValueError):
        Shard.parse(text)


def test_a_shard_parses_and_prints_as_i_of_n():
    assert Shard.parse("2/8") == Shard(2, 8) and str(Shard(2, 8)) == "2/8"
