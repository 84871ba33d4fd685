import pytest

from stt.errors import InvalidRequestError
from stt.languages import normalize_language


@pytest.mark.parametrize(
    ("given", "expected"),
    [("en", "en"), ("EN", "en"), ("pt-BR", "pt"), ("pt_br", "pt"), ("portuguese", "pt"), (None, None), ("", None)],
)
def test_normalize(given, expected):
    assert normalize_language(given) == expected


@pytest.mark.parametrize("bad", ["xx", "klingon", "../en"])
def test_unknown_language_is_400(bad):
    with pytest.raises(InvalidRequestError) as info:
        normalize_language(bad)
    assert info.value.param == "language" and info.value.status == 400
