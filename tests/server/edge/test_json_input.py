"""``server/edge/json_input.py``: JSON read within a depth and a count of values, checked before it is parsed, with
errors that name a field and never a character offset."""

from __future__ import annotations

import json
import sys

import pytest

from server.edge.json_input import MAX_DEPTH, MAX_VALUES, JSONInputError, json_text, load_json


def _refused(text: str, param: str | None = None) -> JSONInputError:
    with pytest.raises(JSONInputError) as caught:
        load_json(text, param)
    assert caught.value.code == "invalid_json"
    return caught.value


def test_json_within_the_bounds_is_parsed_as_json_loads_does():
    value = {"a": [1, 2.5, None, True, {"b": '[[{,\\"}}]'}], "c": "é\u2028", "d": [[[]]]}
    assert load_json(json.dumps(value)) == value
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert load_json(nested) == json.loads(nested)
    many = "[" + ",".join(["0"] * MAX_VALUES) + "]"  # one container and MAX_VALUES - 1 commas
    assert len(load_json(many)) == MAX_VALUES
    _refused("[" + ",".join(["0"] * (MAX_VALUES + 1)) + "]")


def test_brackets_and_commas_inside_strings_do_not_count():
    text = json.dumps({"text": "[{" * (10 * MAX_DEPTH) + "," * (2 * MAX_VALUES), "quote": 'a "[" b'})
    assert load_json(text)["text"].startswith("[{[{")


def test_deeper_than_the_bound_names_the_top_level_member_or_the_given_field():
    deep = '{"model": "whisper-1", "messages": ' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}"
    error = _refused(deep)
    assert error.input == "messages" and error.message == f"The JSON is nested more than {MAX_DEPTH} levels deep."
    assert _refused(deep, "chunking_strategy").input == "chunking_strategy"
    assert _refused("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)).input is None  # no member to name


def test_a_nesting_that_would_exhaust_the_parsers_recursion_is_a_400_not_a_recursion_error():
    depth = 50 * sys.getrecursionlimit()
    error = _refused('{"session": ' + "[" * depth + "]" * depth + "}")
    assert error.input == "session" and "nested" in error.message
    assert _refused('{"a": ' + '{"a": ' * depth + "1" + "}" * depth + "}", "chunking_strategy").input == (
        "chunking_strategy"
    )


def test_more_values_than_the_bound_are_refused_before_they_are_parsed(monkeypatch):
    """Eight million empty objects would take half a gigabyte once parsed: the scan refuses them unparsed."""
    monkeypatch.setattr(json, "loads", lambda *_: pytest.fail("parsed"))
    error = _refused('{"model": "x", "messages": [' + "{}," * 8_000_000 + "{}]}")
    assert error.input == "messages" and error.message == f"The JSON holds more than {MAX_VALUES} values."
    assert _refused("[" * 100_000 + "]" * 100_000).message == f"The JSON is nested more than {MAX_DEPTH} levels deep."


@pytest.mark.parametrize(
    "text",
    ['{"model": "whisper-1", "messages": [', '{"a": "unterminated', "", "{'a': 1}", "[1,]", "NaN,", '{"a": 1} trailing',
     "\ufeff{}"],
)
def test_text_that_is_not_json_names_the_given_field_or_none_and_no_offset(text):
    error = _refused(text)
    assert error.input is None and error.message.startswith("The JSON is not valid")
    assert _refused(text, "chunking_strategy").input == "chunking_strategy"


def test_the_message_says_where_in_words_not_as_a_param():
    error = _refused('{"model": "whisper-1", "messages": [')
    assert error.message == "The JSON is not valid: Expecting value (line 1, column 37)."


def test_an_escaped_member_name_is_named_unescaped():
    assert _refused('{"mess\\u0061ges": ' + "[" * 40 + "]" * 40 + "}").input == "messages"


def test_a_body_is_read_as_utf8_text_or_refused():
    assert json_text(bytearray('{"a": "é"}'.encode())) == '{"a": "é"}'
    with pytest.raises(JSONInputError) as caught:
        json_text(b'{"a": "\xff"}')
    assert caught.value.input is None and caught.value.message == "The JSON is not valid: it is not UTF-8 text."
