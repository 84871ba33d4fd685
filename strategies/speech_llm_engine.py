"""Speech-language models: a conversation of text and audio in, the assistant's next message out.

Two ways to load a registry entry of engine ``speech_llm``:

* a Hugging Face model through transformers: ``AutoProcessor`` and the first auto class that knows the
  checkpoint's configuration (``AutoModelForMultimodalLM``, which covers Qwen2-Audio, Voxtral, Granite Speech,
  Phi-4-multimodal and Gemma 3n, then the image-text-to-text, seq2seq, speech-seq2seq and causal-LM classes);
* an operator-installed Python class named by the entry (``class: package.module:ClassName``, loaded with its
  own ``from_pretrained``), with an optional processor or collator class (``processor_class:``), for research
  models that are not in transformers. Nothing is fetched from the Hub to run: ``trust_remote_code`` keeps
  its registry rule (a pinned revision).

Either way the conversation goes through the processor's chat template (``apply_chat_template`` with
``tokenize=True, return_dict=True``: system messages, history and the audio placed where the template puts
it), the model's ``generate`` writes the answer, and a streamer hands the text out as it is generated. User
text is marked so that it cannot write the template's control tokens or audio placeholders (transformers'
``sanitize_control_tokens``, where the processor takes it).

The contract for a custom class: ``ClassName.from_pretrained(source, **kwargs)`` returns a torch module with
``generate(**inputs, max_new_tokens=..., ...)`` (the generation arguments its signature does not take are not
passed); the processor class's ``from_pretrained(source)`` returns an object with
``apply_chat_template(conversation, add_generation_prompt=True, tokenize=True, return_dict=True,
return_tensors="pt")`` giving the model's inputs (``input_ids`` among them) and a tokenizer (itself or its
``tokenizer`` attribute) that decodes. Audio reaches the processor as ``{"type": "audio", "audio": samples}``:
float32 mono at its feature extractor's ``sampling_rate`` (16 kHz when it names none).

One ``generate`` runs at a time per model; requests wait for it in turn (the pool bounds how many may wait).
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import io
import threading
import wave
from collections.abc import Callable, Iterator, Sequence
from importlib import import_module
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, AutoProcessor, StoppingCriteria, StoppingCriteriaList, TextStreamer

from core.audio import SAMPLE_RATE
from core.errors import InvalidInputError
from core.model_files import resolve_source
from core.registry import ModelSpec

from .base import ChatReply, ChatEngine, ChatTurn, GenerationOptions, RuntimeContext
from .torch_util import module_bytes, torch_dtype

AUTO_CLASSES = (
    "AutoModelForMultimodalLM",
    "AutoModelForImageTextToText",
    "AutoModelForSeq2SeqLM",
    "AutoModelForSpeechSeq2Seq",
    "AutoModelForCausalLM",
)
"""The transformers auto classes tried in turn for a checkpoint with no ``class:``: the first whose mapping
holds the checkpoint's configuration (or that its ``auto_map`` names, for remote code) loads it."""
AUDIO_AS_BASE64 = frozenset({"VoxtralProcessor"})
"""Processors whose chat template takes audio as base64 WAV (Voxtral's mistral-common tokenizer) rather
than as samples."""
_LOCK_POLL_S = 0.25


def import_class(path: str) -> Any:
    """The object ``package.module:Name`` (``Name`` may be dotted: ``Outer.Inner``) names."""
    module_name, _, qualified = path.partition(":")
    found: Any = import_module(module_name)
    for part in qualified.split("."):
        found = getattr(found, part)
    return found


def accepted_kwargs(function: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``kwargs`` that ``function`` takes: all of them when it has ``**kwargs``."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return kwargs
    names = {p.name for p in parameters}
    return {k: v for k, v in kwargs.items() if k in names}


def _takes_named(function: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def model_dtype(spec: ModelSpec, device: str) -> torch.dtype:
    """The torch-based engines' precision, but bfloat16 on a GPU that has it: speech-LLMs are trained in it, and
    some overflow in float16."""
    return torch_dtype(spec, device, bfloat16_on_gpu=True, engine="the speech_llm engine")


class SpeechLLMStrategy(ChatEngine):
    _model: Any = None
    _processor: Any = None

    def __init__(self, spec: ModelSpec, runtime: RuntimeContext) -> None:
        super().__init__(spec, runtime)
        self._generate_lock = threading.Lock()

    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        spec, runtime = self.spec, self.runtime
        source = resolve_source(spec.model)
        hub = runtime.hub.from_pretrained_kwargs(spec.revision)
        model_kwargs = {"dtype": model_dtype(spec, runtime.device), "trust_remote_code": spec.trust_remote_code, **hub}
        if spec.class_:
            model_class = import_class(spec.class_)
            model = model_class.from_pretrained(source, **accepted_kwargs(model_class.from_pretrained, model_kwargs))
        else:
            model = auto_model_class(source, spec, hub).from_pretrained(source, **model_kwargs)
        model.to(runtime.device)
        model.eval()
        processor_source = resolve_source(spec.processor) if spec.processor else source
        processor_hub = hub if processor_source == source else runtime.hub.from_pretrained_kwargs()
        processor_class = import_class(spec.processor_class) if spec.processor_class else AutoProcessor
        processor_kwargs = {"trust_remote_code": spec.trust_remote_code, **processor_hub}
        processor = processor_class.from_pretrained(
            processor_source, **accepted_kwargs(processor_class.from_pretrained, processor_kwargs)
        )
        self._model, self._processor = model, processor

    def unload(self) -> None:
        self._model = None
        self._processor = None

    def memory_bytes(self) -> int:
        model = self._model
        if model is not None and isinstance(model, torch.nn.Module):
            return module_bytes(model)
        return super().memory_bytes()

    @property
    def sampling_rate(self) -> int:
        """The rate the processor's feature extractor wants its audio at."""
        processor = self._processor
        extractor = getattr(processor, "feature_extractor", None) or getattr(processor, "audio_processor", None)
        rate = getattr(extractor, "sampling_rate", None) or getattr(processor, "sampling_rate", None)
        return int(rate or SAMPLE_RATE)

    # ------------------------------------------------------------------ generation

    def generate(
        self,
        turns: Sequence[ChatTurn],
        options: GenerationOptions,
        should_stop: Callable[[], bool] = lambda: False,
        on_text: Callable[[str], None] | None = None,
    ) -> ChatReply:
        while not self._generate_lock.acquire(timeout=_LOCK_POLL_S):
            if should_stop():  # the request went away while waiting for its turn
                return ChatReply("", "stop", 0, 0)
        try:
            model, processor = self._model, self._processor
            if model is None:
                raise RuntimeError(f"model {self.spec.id!r} is not loaded")
            inputs = self._inputs(processor, turns, model)
            try:
                return self._generate(model, processor, inputs, options, should_stop, on_text)
            finally:
                del inputs
        finally:
            self._generate_lock.release()

    def _inputs(self, processor: Any, turns: Sequence[ChatTurn], model: Any) -> dict[str, Any]:
        conversation = [
            {"role": turn.role, "content": [self._content(processor, part) for part in turn.parts]} for turn in turns
        ]
        kwargs: dict[str, Any] = {
            "add_generation_prompt": True,
            "tokenize": True,
            "return_dict": True,
            "return_tensors": "pt",
        }
        if _takes_named(processor.apply_chat_template, "sanitize_control_tokens"):
            kwargs["sanitize_control_tokens"] = True
        try:
            encoded = processor.apply_chat_template(conversation, **kwargs)
        except Exception as exc:
            # The template (or Voxtral's mistral-common tokenizer) refuses the conversation: a role, an order.
            if type(exc).__module__.split(".")[0] in ("jinja2", "mistral_common"):
                raise InvalidInputError(
                    f"The model {self.spec.id!r} cannot take this conversation: {exc}", input="messages"
                ) from exc
            raise
        return {key: _to_model(value, model) for key, value in dict(encoded).items()}

    def _content(self, processor: Any, part: str | np.ndarray) -> dict[str, Any]:
        if isinstance(part, str):
            return {"type": "text", "text": part}
        audio = resample(part, SAMPLE_RATE, self.sampling_rate)
        if type(processor).__name__ in AUDIO_AS_BASE64:
            return {"type": "audio", "base64": wav_base64(audio, self.sampling_rate)}
        return {"type": "audio", "audio": audio}

    def _generate(
        self,
        model: Any,
        processor: Any,
        inputs: dict[str, Any],
        options: GenerationOptions,
        should_stop: Callable[[], bool],
        on_text: Callable[[str], None] | None,
    ) -> ChatReply:
        tokenizer = getattr(processor, "tokenizer", None) or processor
        prompt_ids = inputs["input_ids"]
        deltas: list[str] = []
        streamer = _DeltaStreamer(tokenizer, deltas.append if on_text is None else _both(deltas.append, on_text))
        wanted = {
            **_sampling_kwargs(options),
            "max_new_tokens": options.max_new_tokens,
            "stopping_criteria": StoppingCriteriaList([_StopWhen(should_stop)]),
            "streamer": streamer,
        }
        kwargs = accepted_kwargs(model.generate, wanted)
        with _seeded(options.seed, self.runtime.device), torch.inference_mode():
            output = model.generate(**inputs, **kwargs)
        sequences = output.sequences if hasattr(output, "sequences") else output
        encoder_decoder = bool(getattr(getattr(model, "config", None), "is_encoder_decoder", False))
        new_tokens = sequences[0] if encoder_decoder else sequences[0, prompt_ids.shape[1] :]
        new_ids = [int(t) for t in new_tokens.tolist()]
        if "streamer" in kwargs:
            text = "".join(deltas)
        else:  # a generate that takes no streamer: the whole answer at once
            text = tokenizer.decode(new_ids, skip_special_tokens=True)
            if on_text is not None and text:
                on_text(text)
        return ChatReply(
            text=text,
            finish_reason=_finish_reason(new_ids, options.max_new_tokens, _eos_ids(model), should_stop()),
            prompt_tokens=int(prompt_ids.shape[1]),
            completion_tokens=len(new_ids),
        )


def auto_model_class(source: str, spec: ModelSpec, hub: dict[str, Any]) -> Any:
    """The transformers auto class that loads a checkpoint which writes text from audio and text."""
    import transformers

    config = AutoConfig.from_pretrained(source, trust_remote_code=spec.trust_remote_code, **hub)
    auto_map = getattr(config, "auto_map", None) or {}
    for name in AUTO_CLASSES:
        auto = getattr(transformers, name, None)
        if auto is not None and (name in auto_map or type(config) in auto._model_mapping):
            return auto
    raise ValueError(
        f"transformers has no text-generating auto class for {getattr(config, 'model_type', type(config).__name__)!r}; "
        "name the model's class in its registry entry (class: package.module:ClassName)"
    )


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate:
        return audio
    from math import gcd

    from scipy.signal import resample_poly

    divisor = gcd(from_rate, to_rate)
    return resample_poly(audio, to_rate // divisor, from_rate // divisor).astype(np.float32)


def wav_base64(audio: np.ndarray, rate: int) -> str:
    """Mono 16-bit PCM WAV, base64-encoded."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _to_model(value: Any, model: Any) -> Any:
    if not isinstance(value, torch.Tensor):
        return value
    device = getattr(model, "device", None) or "cpu"
    if value.is_floating_point():
        return value.to(device, dtype=getattr(model, "dtype", value.dtype))
    return value.to(device)


def _sampling_kwargs(options: GenerationOptions) -> dict[str, Any]:
    """``generate``'s sampling arguments: temperature 0 is greedy; unset values keep the model's defaults."""
    if options.temperature == 0:
        return {"do_sample": False}
    kwargs: dict[str, Any] = {}
    if options.temperature is not None:
        kwargs.update(do_sample=True, temperature=options.temperature)
    if options.top_p is not None:
        kwargs.update(do_sample=True, top_p=options.top_p)
    return kwargs


@contextlib.contextmanager
def _seeded(seed: int | None, device: str) -> Iterator[None]:
    """torch's generators seeded for the block and restored after it (``seed`` is best effort, as OpenAI's:
    another model sampling at the same moment draws from the same global generator)."""
    if seed is None:
        yield
        return
    devices = [torch.cuda.current_device()] if device == "cuda" and torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _ids(value: Any) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, (list, tuple, set)):
        return {int(v) for v in value}
    if isinstance(value, torch.Tensor):
        return {int(v) for v in value.flatten().tolist()}
    return {int(value)}


def _eos_ids(model: Any) -> set[int]:
    config = getattr(model, "generation_config", None) or getattr(model, "config", None)
    return _ids(getattr(config, "eos_token_id", None))


def _finish_reason(new_ids: list[int], max_new_tokens: int, eos_ids: set[int], stopped: bool) -> str:
    if stopped or (new_ids and new_ids[-1] in eos_ids) or len(new_ids) < max_new_tokens:
        return "stop"
    return "length"


def _both(first: Callable[[str], None], second: Callable[[str], None]) -> Callable[[str], None]:
    def call(text: str) -> None:
        first(text)
        second(text)

    return call


class _StopWhen(StoppingCriteria):
    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.should_stop(), dtype=torch.bool, device=input_ids.device)


class _DeltaStreamer(TextStreamer):
    """transformers' text streamer (whole words, complete characters, the prompt skipped), to a callback."""

    def __init__(self, tokenizer: Any, on_text: Callable[[str], None]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._on_text = on_text

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self._on_text(text)
