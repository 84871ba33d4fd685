from __future__ import annotations

import json
from pathlib import Path

from bulk.summary import SUMMARY_FILE, Summary


def test_a_run_is_complete_when_every_item_has_its_result_or_its_failure(tmp_path: Path):
    summary = Summary("http", items=5, skipped=1, done=3, failed=1, audio_s=30.0, wall_s=10.0,
                      per_worker={"http://a": 2, "http://b": 1}, events=["ejected http://b after 3 failures"])
    assert summary.complete and summary.audio_s_per_s == 3.0
    assert summary.shares() == {"http://a": 2 / 3, "http://b": 1 / 3}
    text = summary.render()
    assert "3 done, 1 skipped" in text and "3.00 audio s/s" in text and "http://a: 2 items (67%)" in text
    assert "ejected http://b" in text and "Not complete" not in text
    summary.write(tmp_path)
    written = json.loads((tmp_path / SUMMARY_FILE).read_text())
    assert written["complete"] and written["audio_s_per_s"] == 3.0 and written["shares"]["http://b"] == 1 / 3


def test_items_left_for_the_next_run_make_it_incomplete():
    summary = Summary("inprocess", items=2, done=1, gave_up=1)
    assert not summary.complete and "run the same command again" in summary.render()
    assert Summary("http").audio_s_per_s == 0.0 and Summary("http").shares() == {}
