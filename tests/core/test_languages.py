import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ErrorKind, InvalidInputError
from core.languages import LANGUAGES, TO_LANGUAGE_CODE, normalize_language


@pytest.mark.parametrize(
    ("given", "expected"),
    [("en", "en"), ("EN", "en"), ("pt-BR", "pt"), ("pt_br", "pt"), ("portuguese", "pt"), (None, None), ("", None)],
)
def test_normalize(given, expected):
    assert normalize_language(given) == expected


@pytest.mark.parametrize("bad", ["xx", "klingon", "../en"])
def test_unknown_language_is_400(bad):
    with pytest.raises(InvalidInputError) as info:
        normalize_language(bad)
    assert info.value.input == "language" and info.value.kind is ErrorKind.INVALID_INPUT


def test_the_tables_are_whispers_own():
    from transformers.models.whisper.tokenization_whisper import LANGUAGES as WHISPER_LANGUAGES
    from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE as WHISPER_CODES

    assert list(LANGUAGES.items()) == list(WHISPER_LANGUAGES.items())  # the page's language picker keeps this order
    assert TO_LANGUAGE_CODE == WHISPER_CODES


def test_the_language_table_loads_no_transformers():
    check = "import sys, core.languages, pipeline.response_formats; assert 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", check], cwd=Path(__file__).resolve().parents[2], check=True)
