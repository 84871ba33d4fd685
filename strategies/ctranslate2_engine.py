"""CTranslate2 Whisper models through faster-whisper's model, decoded in batches with Whisper's safeguards.

A batch of clips is encoded once and decoded with one beam-search ``generate`` call. Each clip's decoding is
then checked as OpenAI's decoder checks a window: a repetition loop or unlikely text is decoded again at the
next temperature (the failed clips together, as one batch), and a clip the model hears as no speech yields no
text. Word timings are aligned in one batched call but placed clip by clip, so a clip's times never depend on
which other clips shared its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens

from core.audio import SAMPLE_RATE
from core.model_files import local_model_path
from core.types import Segment, TokenLogprob, Transcription, TranscribeOptions, Word

from . import ctranslate2_sampling
from .base import DEFAULT_BATCH_SIZE, ASREngine
from .token_logprobs import spread_over_segments, token_logprobs
from .whisper.judge import THRESHOLDS, Decoding, best_of_failed, decode_with_fallback
from .whisper.prompt import previous_text_tokens
from .whisper.seeding import clip_seed

BEAM_SIZE = 5
BEST_OF = 5
PATIENCE = 1.0
LENGTH_PENALTY = 1.0
# faster-whisper's defaults for attaching punctuation to the neighbouring word.
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


class CTranslate2Strategy(ASREngine):
    """``keywords`` are faster-whisper's ``hotwords`` (text before the prompt); token log-probabilities are
    CTranslate2's alignment pass over each clip's text tokens (teacher-forced after the decoding's own prompt, as
    faster-whisper's word probabilities), since its beam search does not return per-token scores."""

    takes_keywords = True
    returns_logprobs = True
    _model: WhisperModel | None = None

    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    @property
    def is_multilingual(self) -> bool:
        assert self._model is not None
        return self._model.model.is_multilingual

    def _compute_type(self) -> str:
        if self.spec.dtype != "auto":
            return self.spec.dtype
        return "float16" if self.runtime.device == "cuda" else "int8"

    @property
    def workers(self) -> int:
        """On CPU one worker per core, each with one thread: independent batches in parallel beat intra-op
        threads for Whisper-sized matrices (measured with tiny.en: bench/throughput.py). On GPU batching is
        the lever and one worker is enough."""
        runtime = self.runtime
        return runtime.engine_workers or (runtime.cpu_cores if runtime.device == "cpu" else 1)

    @property
    def batch_size(self) -> int:
        """On CPU one clip per call: a worker's single thread decodes a batch of clips no faster than the clips one
        by one, and a batch lasts as long as its longest clip (tiny.en at concurrency 4: 27.8 audio s/s with
        batches of 1 against 22.2 with batches of up to 8, in process; see the README). On GPU batches of 8."""
        return 1 if self.runtime.device == "cpu" else DEFAULT_BATCH_SIZE

    def load(self) -> None:
        local = local_model_path(self.spec.model)
        hub = self.runtime.hub
        self._model = WhisperModel(
            str(local) if local is not None else self.spec.model,
            device=self.runtime.device,
            compute_type=self._compute_type(),
            num_workers=self.workers,
            cpu_threads=self.runtime.cpu_threads or max(1, self.runtime.cpu_cores // self.workers),
            download_root=str(hub.cache_dir) if hub.cache_dir else None,
            revision=self.spec.revision,
            use_auth_token=hub.token,
        )
        # Text is encoded as text: a prompt holding "<|endoftext|>" writes those characters, not Whisper's token.
        self._model.hf_tokenizer.encode_special_tokens = True

    def detect_language_probability(self, audio: np.ndarray) -> tuple[str | None, float | None]:
        assert self._model is not None, "detect_language() before load()"
        language, probability, _ = self._model.detect_language(audio)
        return language, float(probability)

    def transcribe_clips(self, clips: Sequence[np.ndarray], options: TranscribeOptions) -> list[Transcription]:
        model = self._model
        assert model is not None, "transcribe_clips() before load()"
        if not clips:
            return []
        features = np.stack([pad_or_trim(model.feature_extractor(clip)[..., :-1]) for clip in clips])
        encoder_output = model.encode(features)
        languages = self._languages(encoder_output, len(clips), options)
        tokenizers = {
            language: Tokenizer(model.hf_tokenizer, self.is_multilingual, task=options.task, language=language)
            for language in set(languages)
        }
        clip_tokenizers = [tokenizers[language] for language in languages]
        prompts = self._prompts(clip_tokenizers, options)
        seeds = [clip_seed(clip, options) for clip in clips]
        decodings = self._decode_with_fallback(features, encoder_output, prompts, seeds, clip_tokenizers[0], options)
        durations = [len(clip) / SAMPLE_RATE for clip in clips]
        pieces = [
            [] if decoding.is_silence else self._split(tokenizer, decoding, duration)
            for decoding, duration, tokenizer in zip(decodings, durations, clip_tokenizers)
        ]
        logprobs: list[list[TokenLogprob] | None] = [None] * len(clips)
        for language, tokenizer in tokenizers.items():  # aligned after each language's own start tokens
            group = [i for i, clip_language in enumerate(languages) if clip_language == language]
            encoded = encoder_output if len(group) == len(clips) else None
            group_pieces = [pieces[i] for i in group]
            group_durations = [durations[i] for i in group]
            if options.word_timestamps:
                self._add_words(features[group], encoded, tokenizer, group_pieces, group_durations)
            if options.logprobs:
                group_logprobs = self._logprobs(
                    features[group], encoded, prompts[group[0]], tokenizer, group_pieces, group_durations
                )
                for i, clip_logprobs in zip(group, group_logprobs, strict=True):
                    logprobs[i] = clip_logprobs
        return [
            _transcription(language, duration, decoding, clip_pieces, options.word_timestamps, clip_logprobs)
            for language, duration, decoding, clip_pieces, clip_logprobs in zip(
                languages, durations, decodings, pieces, logprobs, strict=True
            )
        ]

    def _languages(self, encoder_output: Any, count: int, options: TranscribeOptions) -> list[str]:
        """The request's language for every clip; else each clip's own, detected from the encoder output
        (the pipeline pins one language per file, so this is for clips decoded without one)."""
        assert self._model is not None
        if options.language or not self.is_multilingual:
            return [options.language or "en"] * count
        return [ranked[0][0].strip("<|>") for ranked in self._model.model.detect_language(encoder_output)]

    # ------------------------------------------------------------------ decoding

    def _prompts(self, tokenizers: list[Tokenizer], options: TranscribeOptions) -> list[list[int]]:
        """Each clip's decoder prompt: the keywords (faster-whisper's hotwords) and the end of the request's prompt
        as previous text (whisper.prompt: 223 tokens in all, where faster-whisper would take 223 of each), then the
        clip's start tokens."""
        assert self._model is not None
        tokenizer = tokenizers[0]  # the prompt text does not depend on the language
        previous = previous_text_tokens(tokenizer.encode, options.keywords, options.initial_prompt)
        return [self._model.get_prompt(t, previous_tokens=previous) for t in tokenizers]

    def _decode_with_fallback(
        self,
        features: np.ndarray,
        encoder_output: Any,
        prompts: list[list[int]],
        seeds: list[int],
        tokenizer: Tokenizer,
        options: TranscribeOptions,
    ) -> list[Decoding]:
        """Every clip decoded at the first temperature; the clips whose output fails Whisper's checks again
        at the next one, together (encoded again: rare, and cheaper than decoding the batch again), until
        they pass or the temperatures run out. Above temperature 0 the engine samples itself, each clip from
        its own seed (ctranslate2_sampling: CTranslate2's own sampling cannot be seeded per request)."""
        assert self._model is not None
        suppress_tokens = get_suppressed_tokens(tokenizer, [-1])  # the same for every language

        def decode(pending: list[int], temperature: float) -> list[Decoding]:
            encoded = encoder_output if len(pending) == len(features) else self._model.encode(features[pending])
            pending_prompts = [prompts[i] for i in pending]
            if temperature > 0:
                pending_seeds = [seeds[i] for i in pending]
                samples = self._sample(
                    encoded, pending_prompts, pending_seeds, tokenizer.eot, suppress_tokens, temperature
                )
                return [_sampled_decoding(tokenizer, sample, temperature) for sample in samples]
            results = self._generate(encoded, pending_prompts, suppress_tokens)
            return [_decoding(tokenizer, result, temperature) for result in results]

        return decode_with_fallback(len(features), THRESHOLDS.temperatures(options.temperature), decode, best_of_failed)

    def _generate(self, encoder_output: Any, prompts: list[list[int]], suppress_tokens: Any) -> list[Any]:
        """Beam search, as faster-whisper decodes at temperature 0."""
        assert self._model is not None
        return self._model.model.generate(
            encoder_output,
            [list(prompt) for prompt in prompts],
            beam_size=BEAM_SIZE,
            patience=PATIENCE,
            length_penalty=LENGTH_PENALTY,
            max_length=self._model.max_length,
            suppress_blank=True,
            suppress_tokens=suppress_tokens,
            return_scores=True,
            return_no_speech_prob=True,
        )

    def _sample(
        self,
        encoder_output: Any,
        prompts: list[list[int]],
        seeds: list[int],
        eot: int,
        suppress_tokens: Any,
        temperature: float,
    ) -> list[ctranslate2_sampling.Sample]:
        """Best of ``BEST_OF`` samples per clip, as faster-whisper samples, drawn from each clip's seed."""
        assert self._model is not None
        return ctranslate2_sampling.sample(
            self._model.model,
            encoder_output,
            prompts,
            temperature,
            seeds,
            hypotheses=BEST_OF,
            eot=eot,
            max_length=self._model.max_length,
            suppress_blank=True,
            suppress_tokens=suppress_tokens,
        )

    def _split(self, tokenizer: Tokenizer, decoding: Decoding, duration: float) -> list[dict[str, Any]]:
        """The clip's tokens cut into segments at its timestamp tokens (times relative to the clip)."""
        assert self._model is not None
        subsegments, _, _ = self._model._split_segments_by_timestamps(
            tokenizer=tokenizer,
            tokens=decoding.tokens,
            time_offset=0.0,
            segment_size=_segment_frames(self._model, duration),
            segment_duration=duration,
            seek=0,
        )
        return [
            {**piece, "text": tokenizer.decode(piece["tokens"]), "seek": 0}
            for piece in subsegments
            if piece["tokens"]
        ]

    def _add_words(
        self,
        features: np.ndarray,
        encoder_output: Any,
        tokenizer: Tokenizer,
        pieces: list[list[dict[str, Any]]],
        durations: list[float],
    ) -> None:
        """Word timings: one batched cross-attention alignment, then each clip's words placed on its own."""
        model = self._model
        assert model is not None
        spoken = [i for i, clip_pieces in enumerate(pieces) if clip_pieces]
        if not spoken:
            return
        text_tokens = [[t for piece in pieces[i] for t in piece["tokens"] if t < tokenizer.eot] for i in spoken]
        frames = [_segment_frames(model, durations[i]) for i in spoken]
        encoded = encoder_output if encoder_output is not None and len(spoken) == len(pieces) else None
        encoded = encoded if encoded is not None else model.encode(features[spoken])
        alignments = model.find_alignment(tokenizer, text_tokens, encoded, frames)
        for i, alignment, clip_frames in zip(spoken, alignments, frames):
            # faster-whisper's word placement carries the previous clip's last speech time into the next
            # clip, which only suits consecutive windows of one file: each clip starts from 0 here.
            one_clip = SimpleNamespace(
                find_alignment=lambda *_, alignment=alignment: [alignment],
                frames_per_second=model.frames_per_second,
            )
            WhisperModel.add_word_timestamps(
                one_clip, [pieces[i]], tokenizer, None, [clip_frames],
                PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS, last_speech_timestamp=0.0,
            )

    def _logprobs(
        self,
        features: np.ndarray,
        encoder_output: Any,
        prompt: list[int],
        tokenizer: Tokenizer,
        pieces: list[list[dict[str, Any]]],
        durations: list[float],
    ) -> list[list[TokenLogprob]]:
        """Each clip's text tokens with their log-probabilities, from one batched alignment pass."""
        model = self._model
        assert model is not None
        text_tokens = [
            [token for piece in clip_pieces for token in piece["tokens"] if token < tokenizer.eot]
            for clip_pieces in pieces
        ]
        spoken = [i for i, tokens in enumerate(text_tokens) if tokens]
        logprobs: list[list[TokenLogprob]] = [[] for _ in pieces]
        if not spoken:
            return logprobs
        encoded = encoder_output if encoder_output is not None and len(spoken) == len(pieces) else None
        encoded = encoded if encoded is not None else model.encode(features[spoken])
        frames = [_segment_frames(model, durations[i]) for i in spoken]
        alignments = model.model.align(encoded, prompt, [text_tokens[i] for i in spoken], frames)
        entry = model.hf_tokenizer.id_to_token
        for i, alignment in zip(spoken, alignments, strict=True):
            probabilities = np.maximum(np.asarray(alignment.text_token_probs, dtype=np.float64), 1e-45)
            logprobs[i] = token_logprobs(text_tokens[i], np.log(probabilities).tolist(), entry)
        return logprobs

    def unload(self) -> None:
        if self._model is not None:
            self._model.model.unload_model()
        self._model = None


def _segment_frames(model: WhisperModel, duration: float) -> int:
    return int(np.ceil(duration) * model.frames_per_second)


def _decoding(tokenizer: Tokenizer, result: Any, temperature: float) -> Decoding:
    tokens = result.sequences_ids[0]
    # CTranslate2 returns the length-normalised score; Whisper's average counts the end token too.
    cumulative = result.scores[0] * (len(tokens) ** LENGTH_PENALTY)
    return Decoding(
        tokens=tokens,
        text=tokenizer.decode(tokens).strip(),
        avg_logprob=cumulative / (len(tokens) + 1),
        no_speech_prob=result.no_speech_prob,
        temperature=temperature,
    )


def _sampled_decoding(tokenizer: Tokenizer, sample: ctranslate2_sampling.Sample, temperature: float) -> Decoding:
    return Decoding(
        tokens=sample.tokens,
        text=tokenizer.decode(sample.tokens).strip(),
        avg_logprob=sample.avg_logprob,
        no_speech_prob=sample.no_speech_prob,
        temperature=temperature,
    )


def _transcription(
    language: str,
    duration: float,
    decoding: Decoding,
    pieces: list[dict[str, Any]],
    with_words: bool,
    logprobs: list[TokenLogprob] | None,
) -> Transcription:
    segments = [
        Segment(
            id=index,
            seek=piece["seek"],
            start=round(piece["start"], 3),
            end=round(piece["end"], 3),
            text=piece["text"],
            tokens=list(piece["tokens"]),
            temperature=decoding.temperature,
            avg_logprob=decoding.avg_logprob,
            compression_ratio=decoding.compression_ratio,
            no_speech_prob=decoding.no_speech_prob,
            words=[Word(**w) for w in piece.get("words") or []] if with_words else [],
        )
        for index, piece in enumerate(pieces)
    ]
    if logprobs is not None:
        segments = spread_over_segments(segments, logprobs)
    return Transcription(
        text="".join(s.text for s in segments).strip(), language=language, duration=duration, segments=segments
    )
