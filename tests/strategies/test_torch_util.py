from __future__ import annotations

import pytest
import torch

from core.registry import ModelSpec
from strategies.torch_util import torch_dtype


def _spec(dtype: str = "auto") -> ModelSpec:
    return ModelSpec(id="m", engine="transformers", model="x", dtype=dtype)


def test_float32_on_cpu_and_float16_on_gpu_unless_the_entry_pins_a_precision():
    assert torch_dtype(_spec(), "cpu") == torch.float32
    assert torch_dtype(_spec(), "cuda") == torch.float16
    assert torch_dtype(_spec("bfloat16"), "cpu") == torch.bfloat16
    assert torch_dtype(_spec(), "cpu", bfloat16_on_gpu=True) == torch.float32


@pytest.mark.parametrize("supported", [True, False])
def test_bfloat16_on_a_gpu_that_has_it_when_asked(monkeypatch, supported):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: supported)
    assert torch_dtype(_spec(), "cuda", bfloat16_on_gpu=True) == (torch.bfloat16 if supported else torch.float16)


def test_a_precision_torch_does_not_have_is_refused_by_the_engine_that_asked():
    with pytest.raises(ValueError, match="dtype 'int8' is not available for Hugging Face engines"):
        torch_dtype(_spec("int8"), "cpu")
    with pytest.raises(ValueError, match="dtype 'int8' is not available for the speech_llm engine"):
        torch_dtype(_spec("int8"), "cpu", engine="the speech_llm engine")
