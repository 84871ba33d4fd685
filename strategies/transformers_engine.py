"""Whisper-family seq2seq checkpoints through transformers' Whisper ``generate``, a batch of clips per call.

How it decodes, and where Whisper's safeguards hold: docs/engines.md."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor, pipeline

from core.audio import SAMPLE_RATE
from core.model_files import resolve_source
from core.types import Segment, Transcription, TranscribeOptions, Word

from .base import ASREngine
from .token_logprobs import spread_over_segments
from .torch_util import module_bytes, torch_dtype
from .whisper.alignment import token_times
from .whisper.fallback import generated_tokens, judged_decodings, scored
from .whisper.judge import THRESHOLDS, Decoding
from .whisper.probe import probe_speech
from .whisper.prompt import language_setting, transformers_prompt_ids, whisper_prefix
from .whisper.sampling import SampledDecoding
from .whisper.scoring import text_token_logprobs
from .whisper.seeding import clip_seed
from .whisper.segments import segments_from_words

CLIP_SAMPLES = 30 * SAMPLE_RATE
BEAM_SIZE = 5  # what transformers' ASR pipeline uses by default, after OpenAI's Whisper


class TransformersStrategy(ASREngine):
    takes_keywords = True
    returns_logprobs = True

    _pipe: Any = None
    _processor: Any = None

    @property
    def is_loaded(self) -> bool:
        return self._pipe is not None

    @property
    def is_multilingual(self) -> bool:
        return bool(getattr(self._pipe.model.generation_config, "is_multilingual", True))

    def load(self) -> None:
        source = resolve_source(self.spec.model)
        hub = self.runtime.hub.from_pretrained_kwargs(self.spec.revision)
        dtype = torch_dtype(self.spec, self.runtime.device)
        model = AutoModelForSpeechSeq2Seq.from_pretrained(
            source,
            dtype=dtype,
            attn_implementation="sdpa",
            trust_remote_code=self.spec.trust_remote_code,
            **hub,
        )
        processor_source = resolve_source(self.spec.processor) if self.spec.processor else source
        processor_hub = hub if processor_source == source else self.runtime.hub.from_pretrained_kwargs()
        self._processor = AutoProcessor.from_pretrained(processor_source, **processor_hub)
        tokenizer = self._processor.tokenizer
        if tokenizer.pad_token_id is None:  # batching chunks pads with it; Whisper pads with end-of-text
            tokenizer.pad_token_id = model.generation_config.eos_token_id
        self._pipe = pipeline(
            "automatic-speech-recognition",
            model=model,
            tokenizer=self._processor.tokenizer,
            feature_extractor=self._processor.feature_extractor,
            dtype=dtype,
            device=self.runtime.device,
        )

    def memory_bytes(self) -> int:
        return module_bytes(self._pipe.model) if self._pipe is not None else super().memory_bytes()

    def _features(self, clips: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel features of clips (each padded to 30 s) and their attention masks, on the model's device."""
        model = self._pipe.model
        processed = self._processor.feature_extractor(
            [clip[:CLIP_SAMPLES] for clip in clips],
            sampling_rate=SAMPLE_RATE,
            return_tensors="pt",
            return_attention_mask=True,
        )
        return (
            processed.input_features.to(model.device, dtype=model.dtype),
            processed.attention_mask.to(model.device),
        )

    def _prompt_ids(self, options: TranscribeOptions) -> list[int]:
        """``<|startofprev|>`` and the keywords, then the end of the request's prompt (whisper.prompt), or nothing."""
        return transformers_prompt_ids(self._processor.tokenizer, options.keywords, options.initial_prompt)

    def _request_config(self, options: TranscribeOptions, languages: Sequence[str]) -> Any:
        """The model's generation config with what the request's decodings follow: timestamps, language, task."""
        config = copy.deepcopy(self._pipe.model.generation_config)
        config.return_timestamps = True
        if self.is_multilingual:
            config.language, config.task = language_setting(languages), options.task
        return config

    def detect_language_probability(self, audio: np.ndarray) -> tuple[str | None, float | None]:
        assert self._pipe is not None, "detect_language() before load()"
        if not self.is_multilingual:
            return "en", 1.0
        features, _ = self._features([audio])
        probe = probe_speech(self._pipe.model, self._pipe.model.generation_config, features)
        return probe.languages[0], probe.language_probs[0]

    def transcribe_clips(self, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
        assert self._pipe is not None, "transcribe_clips() before load()"
        if not clips:
            return []
        model = self._pipe.model
        features, attention_mask = self._features(clips)
        prompt_ids = self._prompt_ids(options)
        probe = probe_speech(model, model.generation_config, features, prompt_ids)
        languages = [options.language or detected or "en" for detected in probe.languages]
        config = self._request_config(options, languages)
        language_of = (lambda language: language) if self.is_multilingual else (lambda _: None)
        prefixes = [prompt_ids + whisper_prefix(config, language_of(language), options.task) for language in languages]

        def first(pending: list[int]) -> list[SampledDecoding]:
            pending_languages = [languages[i] for i in pending]
            return self._beam_search(
                features, attention_mask, probe.encoder_states, config, prompt_ids, prefixes, pending_languages,
                options, pending,
            )

        decodings = judged_decodings(
            model, config, self._processor.tokenizer, probe.encoder_states, prefixes, probe.no_speech_probs,
            [clip_seed(clip, options) for clip in clips], THRESHOLDS.temperatures(options.temperature), first,
        )
        num_frames = attention_mask.sum(dim=-1).tolist()
        return [
            self._transcription(
                decoding, len(clip) / SAMPLE_RATE, language, options, config, prefix, states, frames
            )
            for clip, decoding, language, prefix, states, frames in zip(
                clips, decodings, languages, prefixes, probe.encoder_states, num_frames, strict=True
            )
        ]

    def _beam_search(
        self,
        features: torch.Tensor,
        attention_mask: torch.Tensor,
        encoder_states: torch.Tensor,
        config: Any,
        prompt_ids: list[int],
        prefixes: list[list[int]],
        languages: list[str],
        options: TranscribeOptions,
        pending: list[int],
    ) -> list[SampledDecoding]:
        """The first decoding of the clips at ``pending``: one beam-search ``generate`` call, one pass per clip
        (generate would otherwise decode again from a transcript's last timestamp; the pipeline continues a clip
        that stops short), each clip's decoding scored afterwards."""
        model = self._pipe.model
        kwargs: dict[str, Any] = {"num_beams": BEAM_SIZE, "temperature": 0.0}
        if self.is_multilingual:
            kwargs.update(language=language_setting(languages), task=options.task)
        if prompt_ids:
            kwargs["prompt_ids"] = torch.as_tensor(prompt_ids, device=model.device)
        with torch.inference_mode():
            sequences = model.generate(
                features[pending],
                attention_mask=attention_mask[pending],
                return_timestamps=True,
                force_unique_generate_call=True,
                **kwargs,
            ).cpu()
        decoded = []
        for i, sequence in zip(pending, sequences, strict=True):
            prefix = prefixes[i]
            if sequence[: len(prefix)].tolist() != prefix:
                raise RuntimeError(f"generate started from {sequence[: len(prefix)].tolist()}, not from {prefix}")
            tokens = generated_tokens(sequence, len(prefix), config.eos_token_id)
            decoded.append(scored(model, config, encoder_states[i], prefix, tokens))
        return decoded

    def _transcription(
        self,
        decoding: Decoding,
        duration: float,
        language: str,
        options: TranscribeOptions,
        config: Any,
        prefix: list[int],
        encoder_states: torch.Tensor,
        num_frames: int,
    ) -> Transcription:
        """The clip's text, segments and (when asked) words and token log-probabilities, from its decoding: the
        ASR pipeline object turns its tokens into text, chunks and word timings (``postprocess``)."""
        if decoding.is_silence or not decoding.tokens:  # Whisper's no-speech rule
            return Transcription(text="", language=language, duration=duration, segments=[])
        model = self._pipe.model
        tokens = torch.tensor(decoding.tokens, dtype=torch.long)
        model_output: dict[str, Any] = {"tokens": tokens[None], "is_last": True}
        if options.word_timestamps:
            sequence = torch.tensor([*prefix, *decoding.tokens], dtype=torch.long, device=encoder_states.device)
            times = token_times(model, config.alignment_heads, encoder_states, sequence, len(prefix), num_frames)
            model_output["token_timestamps"] = times[len(prefix) :][None]
        output = self._pipe.postprocess([model_output], return_timestamps="word" if options.word_timestamps else True)
        chunks = output.get("chunks") or []
        if options.word_timestamps:
            segments = segments_from_words([_word(c, duration) for c in chunks])
        else:
            segments = [_segment(i, c, duration) for i, c in enumerate(c for c in chunks if c["text"].strip())]
        # Which attempt the text comes from (its scores are left out, as on remote_code: batched float math
        # changes their last digits, and a clip's result must not depend on the other clips of its batch).
        segments = [segment.model_copy(update={"temperature": decoding.temperature}) for segment in segments]
        if options.logprobs:
            logprobs = text_token_logprobs(
                model, config, self._processor.tokenizer, encoder_states, prefix, decoding.tokens
            )
            segments = spread_over_segments(segments, logprobs)
        return Transcription(text=output["text"].strip(), language=language, duration=duration, segments=segments)

    def unload(self) -> None:
        self._pipe = None
        self._processor = None


def _span(chunk: dict[str, Any], duration: float) -> tuple[float, float]:
    start, end = chunk["timestamp"]
    start = float(start or 0.0)
    end = float(end) if end is not None else duration
    return start, max(start, min(end, duration))


def _segment(index: int, chunk: dict[str, Any], duration: float) -> Segment:
    start, end = _span(chunk, duration)
    return Segment(id=index, start=start, end=end, text=chunk["text"])


def _word(chunk: dict[str, Any], duration: float) -> Word:
    start, end = _span(chunk, duration)
    return Word(start=start, end=end, word=chunk["text"])
