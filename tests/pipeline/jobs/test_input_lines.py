"""A batch's input file read whole: each bad line named by its number, with the check's own code and field."""

from __future__ import annotations

import json

from pipeline.jobs.input_lines import MAX_REPORTED_ERRORS, read_input
from tests.support.jobs import TRANSCRIPTIONS, check


def raw(custom_id: str = "a", **overrides) -> bytes:
    value = {"custom_id": custom_id, "method": "POST", "url": TRANSCRIPTIONS, "body": {"text": "x"}, **overrides}
    return json.dumps(value).encode()


def test_good_lines_are_read_with_their_numbers_and_blank_lines_skipped():
    lines, errors = read_input([raw("a"), b"\n", raw("b")], TRANSCRIPTIONS, check, max_lines=10)
    assert errors == [] and [(line.line, line.custom_id) for line in lines] == [(1, "a"), (3, "b")]


def test_each_bad_line_is_named_with_its_number_code_and_field():
    lines, errors = read_input(
        [raw("a"), b"[1]", b"{oops", raw("a"), raw("c", method="GET"), raw("d", url="/v1/other"),
         raw("e", body=[]), raw("f", body={"text": 3}), raw("", body={"text": "x"})],
        TRANSCRIPTIONS, check, max_lines=100,
    )
    assert [line.custom_id for line in lines] == ["a"]
    assert [(e.line, e.code, e.param) for e in errors] == [
        (2, "invalid_json_line", None), (3, "invalid_json_line", None), (4, "duplicate_custom_id", "custom_id"),
        (5, "invalid_method", "method"), (6, "mismatched_url", "url"), (7, "invalid_body", "body"),
        (8, "invalid_value", "body.text"), (9, "invalid_custom_id", "custom_id"),
    ]
    assert errors[6].as_dict() == {"code": "invalid_value", "message": "Line 8: text must be a string.",
                                   "param": "body.text", "line": 8}


def test_lines_past_the_bound_and_an_empty_file_are_errors():
    _, errors = read_input([raw(str(n)) for n in range(5)], TRANSCRIPTIONS, check, max_lines=3)
    assert [(e.line, e.code) for e in errors] == [(4, "too_many_lines")]
    _, errors = read_input([b"\n"], TRANSCRIPTIONS, check, max_lines=3)
    assert [e.code for e in errors] == ["empty_file"]


def test_the_errors_reported_are_bounded():
    _, errors = read_input([b"{"] * 500, TRANSCRIPTIONS, check, max_lines=1000)
    assert len(errors) == MAX_REPORTED_ERRORS
