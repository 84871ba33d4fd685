"""The depth-checked JSON loader: plain JSON parses, bad or deeply nested JSON is a domain error, never a
RecursionError."""

from __future__ import annotations

import json

import pytest

from core.errors import InvalidInputError
from server.edge.json_input import MAX_JSON_DEPTH, load_json, nesting_depth


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_plain_json_parses_as_json_loads_does():
    text = json.dumps({"type": "session.update", "session": {"audio": {"input": {"format": [1, {"a": None}]}}}})
    assert load_json(text) == json.loads(text)
    assert load_json(text.encode()) == json.loads(text)
    assert load_json(nested(MAX_JSON_DEPTH)) == json.loads(nested(MAX_JSON_DEPTH))


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 500, 100_000])
def test_nesting_beyond_the_bound_is_an_invalid_json_error(depth):
    with pytest.raises(InvalidInputError) as refused:
        load_json(nested(depth), what="The event", input="body")
    assert refused.value.code == "invalid_json" and refused.value.input == "body"
    message = f"The event is nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and objects."
    assert refused.value.message == message


def test_many_brackets_side_by_side_are_not_depth():
    flat = json.dumps([[i] for i in range(1000)] + [{"k": [1]}])
    assert len(load_json(flat)) == 1001


@pytest.mark.parametrize("text", ["not json", "{", '{"a": 1,}', b"\xff\xfe", ""])
def test_what_is_not_json_is_an_invalid_json_error_that_does_not_repeat_the_input(text):
    with pytest.raises(InvalidInputError) as refused:
        load_json(text, what="The body")
    assert refused.value.code == "invalid_json" and refused.value.message.startswith("The body is not valid JSON: ")
    assert "not json" not in refused.value.message


def test_nesting_depth_counts_arrays_and_objects_and_stops_early():
    assert nesting_depth(1, 10) == 0
    assert nesting_depth({"a": [1, {"b": []}]}, 10) == 4
    assert nesting_depth(json.loads(nested(50)), 5) == 6
