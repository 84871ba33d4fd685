import pytest

from core.errors import ErrorKind, InvalidInputError
from core.languages import normalize_language


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
