"""``server/audio/transcribe_route.py``: ``/transcribe``'s form checked into the domain's options (the route itself
runs on the real service, in ``tests/e2e/test_service.py``)."""

from __future__ import annotations

import pytest

from core.errors import InvalidInputError
from core.types import DiarizeOptions
from server.audio.transcribe_route import TranscribeForm


def test_the_form_gives_the_domains_options():
    form = TranscribeForm(model_id="tiny-en", language="en", task="translate", word_timestamps=True)
    options = form.options()
    assert (options.language, options.task, options.word_timestamps) == ("en", "translate", True)
    assert form.speakers() is None  # without diarize, speaker counts are not read
    assert TranscribeForm(num_speakers=99).speakers() is None
    assert TranscribeForm(diarize=True, min_speakers=2, max_speakers=3).speakers() == DiarizeOptions(None, 2, 3)


@pytest.mark.parametrize(
    ("form", "param"),
    [
        (TranscribeForm(diarize=True, num_speakers=0), "num_speakers"),
        (TranscribeForm(diarize=True, min_speakers=3, max_speakers=2), "min_speakers"),
    ],
)
def test_a_form_out_of_bounds_names_the_parameter(form, param):
    with pytest.raises(InvalidInputError) as info:
        form.speakers()
    assert info.value.input == param
