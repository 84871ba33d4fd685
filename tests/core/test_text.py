"""``core/text.py``: a request text's size in UTF-8 and the characters it may not hold."""

from __future__ import annotations

import pytest

from core.errors import InvalidInputError
from core.text import check_characters, check_unicode, over_utf8_size, utf8_size


def test_the_size_is_counted_in_utf8_bytes():
    assert [utf8_size(text) for text in ("", "abc", "é", "€", "😀", "\ud800")] == [0, 3, 2, 3, 4, 3]
    assert not over_utf8_size("é" * 8, 16) and over_utf8_size("é" * 9, 16)
    assert over_utf8_size("a" * 17, 16) and not over_utf8_size("a" * 16, 16)


@pytest.mark.parametrize("character", [chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20),
                                                        *range(0x7F, 0xA0), *range(0x202A, 0x202F),
                                                        *range(0x2066, 0x206A), 0xD800, 0xDFFF]])
def test_controls_overrides_and_lone_surrogates_are_refused_naming_the_input(character):
    for lines in (True, False):
        with pytest.raises(InvalidInputError) as info:
            check_characters(f"a{character}b", "prompt", lines=lines)
        assert info.value.input == "prompt" and f"U+{ord(character):04X} at 1" in info.value.message


def test_tabs_and_line_breaks_are_allowed_only_in_running_text():
    check_characters("one\ttwo\r\nthree\n", "prompt", lines=True)
    for character in "\t\r\n":
        with pytest.raises(InvalidInputError):
            check_characters(f"a{character}b", "keywords", lines=False)


def test_other_scripts_marks_and_symbols_are_text():
    text = "Zoë, Dvořák, 北京, مرحبا, שלום\u200f, naïve — “quoted” 😀 \u00a0\u2028"
    check_characters(text, "prompt", lines=True)
    check_characters(text.replace("\u2028", ""), "keywords", lines=False)


def test_a_lone_surrogate_is_no_unicode_text_anywhere():
    check_unicode("controls \x00 and \u202e are text here, 😀 too", "messages.[0].content")
    with pytest.raises(InvalidInputError) as info:
        check_unicode("half a pair: \ud83d", "messages.[0].content")
    assert info.value.input == "messages.[0].content" and "U+D83D at 13" in info.value.message
