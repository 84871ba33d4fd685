"""Whisper-family seq2seq checkpoints through transformers' Whisper ``generate``, a batch of clips per call.

How it decodes, and where Whisper's safeguards hold: docs/engines.md."""

from __future__ import annotations

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
from .whisper.judge import THRESHOLDS
from .whisper.probe import probe_speech
from .whisper.prompt import language_setting, transformers_prompt_ids
from .whisper.scoring import text_token_logprobs
from .whisper.segments import segments_from_words

CLIP_SAMPLES = 30 * SAMPLE_RATE
BEAM_SIZE = 5  # what transformers' ASR pipeline uses by default, after OpenAI's Whisper
# generate's own temperature fallback, judged by Whisper's thresholds on transformers' token-id compression ratio.
TEMPERATURE_FALLBACK: dict[str, Any] = {
    "temperature": tuple(THRESHOLDS.temperatures(0.0)),
    "compression_ratio_threshold": THRESHOLDS.token_compression_ratio_threshold,
    "logprob_threshold": THRESHOLDS.log_prob_threshold,
}
# transformers' no-speech gate; it needs the log-prob threshold even when sampling at one temperature.
NO_SPEECH_GATE: dict[str, Any] = {
    "no_speech_threshold": THRESHOLDS.no_speech_threshold,
    "logprob_threshold": THRESHOLDS.log_prob_threshold,
}


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

    def _prompt_ids(self, options: TranscribeOptions) -> torch.Tensor | None:
        """``<|startofprev|>`` and the keywords, then the end of the request's prompt (whisper.prompt), or None."""
        ids = transformers_prompt_ids(self._processor.tokenizer, options.keywords, options.initial_prompt)
        return torch.as_tensor(ids, device=self._pipe.device) if ids else None

    def _generate_kwargs(self, options: TranscribeOptions, languages: Sequence[str], gate: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"num_beams": BEAM_SIZE}
        if self.is_multilingual:
            kwargs.update(language=language_setting(languages), task=options.task)
        if options.temperature in (None, 0.0):
            kwargs.update(TEMPERATURE_FALLBACK)
        else:
            kwargs.update(temperature=options.temperature, do_sample=True)
        if gate:
            kwargs.update(NO_SPEECH_GATE)
        prompt_ids = self._prompt_ids(options)
        if prompt_ids is not None:
            kwargs["prompt_ids"] = prompt_ids
        return kwargs

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
        probe = probe_speech(
            model, model.generation_config, features, prompt_ids.tolist() if prompt_ids is not None else ()
        )
        languages = [options.language or detected or "en" for detected in probe.languages]
        outputs: list[dict[str, Any] | None] = [None] * len(clips)
        # A clip whose no-speech probability is at or below the threshold can never be dropped: it needs no gate.
        speech = [i for i, p in enumerate(probe.no_speech_probs) if not THRESHOLDS.hears_no_speech(p)]
        doubtful = [i for i, p in enumerate(probe.no_speech_probs) if THRESHOLDS.hears_no_speech(p)]
        for group, gate in [(speech, False)] + [([i], True) for i in doubtful]:
            if group:
                group_languages = [languages[i] for i in group]
                decoded = self._decode(
                    features[group], attention_mask[group], probe.encoder_states[group], group_languages, options, gate
                )
                for i, output in zip(group, decoded, strict=True):
                    outputs[i] = output
        return [
            self._transcription(output, len(clip) / SAMPLE_RATE, language, options)
            for clip, output, language in zip(clips, outputs, languages, strict=True)
        ]

    def _decode(
        self,
        features: torch.Tensor,
        attention_mask: torch.Tensor,
        encoder_states: torch.Tensor,
        languages: Sequence[str],
        options: TranscribeOptions,
        gate: bool,
    ) -> list[dict[str, Any] | None]:
        """One generate call for a batch; per clip the pipeline's output (text, chunks), None when dropped."""
        word = options.word_timestamps
        with torch.inference_mode():
            generated = self._pipe.model.generate(
                features,
                attention_mask=attention_mask,
                return_timestamps=True,
                return_segments=True,
                **self._generate_kwargs(options, languages, gate),
            )
        num_frames = attention_mask.sum(dim=-1).tolist()
        outputs: list[dict[str, Any] | None] = []
        for index, segments in enumerate(generated["segments"]):
            if not segments:  # the no-speech gate dropped it
                outputs.append(None)
                continue
            tokens = torch.cat([segment["tokens"] for segment in segments])
            model_output: dict[str, Any] = {"tokens": tokens[None].long().cpu(), "is_last": True}
            if word or options.logprobs:  # the clip's whole decoder sequence, only for what needs it
                sequence, prefix_length = self._decoder_sequence(segments)
            if word:
                timings = self._token_times(segments, encoder_states[index], num_frames[index], sequence, prefix_length)
                model_output["token_timestamps"] = timings[None]
            output = self._pipe.postprocess([model_output], return_timestamps="word" if word else True)
            if options.logprobs:
                model = self._pipe.model
                output["token_logprobs"] = text_token_logprobs(
                    model, model.generation_config, self._processor.tokenizer, encoder_states[index],
                    sequence[:prefix_length].tolist(), sequence[prefix_length:].tolist(),
                )
            outputs.append(output)
        return outputs

    def _decoder_sequence(self, segments: list[dict[str, Any]]) -> tuple[torch.Tensor, int]:
        """A clip's decoder sequence (its prefix, then its text and timestamp tokens, end-of-text excluded) and
        the prefix's length."""
        result = segments[0]["result"]  # the clip's whole decoder sequence: prefix, tokens, padding
        sequence = (result["sequences"] if isinstance(result, dict) else result).long().cpu()
        prefix_length = int(segments[0]["idxs"][0])
        ends = (sequence[prefix_length:] == self._pipe.model.generation_config.eos_token_id).nonzero()
        length = prefix_length + (int(ends[0, 0]) if len(ends) else len(sequence) - prefix_length)
        return sequence[:length], prefix_length

    def _token_times(
        self,
        segments: list[dict[str, Any]],
        encoder_states: torch.Tensor,
        num_frames: int,
        sequence: torch.Tensor,
        prefix_length: int,
    ) -> torch.Tensor:
        """The time of each token of a clip's segments, aligned on the clip alone (whisper.alignment.token_times), so
        that it does not depend on the other clips of the batch."""
        model = self._pipe.model
        times = token_times(
            model,
            model.generation_config.alignment_heads,
            encoder_states,
            sequence.to(encoder_states.device),
            prefix_length,
            num_frames,
        )
        return torch.cat([times[start:end] for start, end in (segment["idxs"] for segment in segments)])

    def _transcription(
        self, output: dict[str, Any] | None, duration: float, language: str, options: TranscribeOptions
    ) -> Transcription:
        if output is None:
            return Transcription(text="", language=language, duration=duration, segments=[])
        chunks = output.get("chunks") or []
        if options.word_timestamps:
            segments = segments_from_words([_word(c, duration) for c in chunks])
        else:
            segments = [_segment(i, c, duration) for i, c in enumerate(c for c in chunks if c["text"].strip())]
        if "token_logprobs" in output:
            segments = spread_over_segments(segments, output["token_logprobs"])
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

