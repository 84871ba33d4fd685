"""A toy research speech-LLM for the ``class:`` registry entries: a speech encoder, a connector and a language
model in one torch module, with its own collator, shaped like the brief's WOZ model (``SpeechEncoderConnectorLLM``
and its collator) but tiny and deterministic: its answer says what reached it (how many clips, how many seconds,
the last text), so a test sees that the plumbing carried the conversation. It is not a language model.

Registry entry::

    - id: toy-woz
      engine: speech_llm
      model: /path/to/saved/toy
      class: tests.support.speech_llm_toy:ToySpeechEncoderConnectorLLM
      processor_class: tests.support.speech_llm_toy:ToyCollator
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

TOY_CLASS = "tests.support.speech_llm_toy:ToySpeechEncoderConnectorLLM"
TOY_COLLATOR = "tests.support.speech_llm_toy:ToyCollator"
"""The registry's ``class:`` and ``processor_class:`` values that name the toy."""

PAD, AUDIO, EOS = 0, 1, 2
_FIRST_CHAR = 3


class ToyCollator:
    """Character-level tokens, one ``AUDIO`` placeholder per clip, and the clips padded into one tensor."""

    sampling_rate = 16_000

    def __init__(self, bos: str = "<s>") -> None:
        self.bos = bos
        self.pad_token_id = PAD
        self.eos_token_id = EOS

    @classmethod
    def from_pretrained(cls, path: str | Path) -> ToyCollator:  # takes no hub arguments: they are not passed
        return cls(**json.loads((Path(path) / "collator.json").read_text()))

    def save_pretrained(self, path: str | Path) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "collator.json").write_text(json.dumps({"bos": self.bos}))

    def encode(self, text: str) -> list[int]:
        return [_FIRST_CHAR + ord(c) - 32 for c in text if 32 <= ord(c) < 127]

    def decode(self, ids: Any, skip_special_tokens: bool = False, **_: Any) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        out = []
        for i in ids:
            if i >= _FIRST_CHAR:
                out.append(chr(i - _FIRST_CHAR + 32))
            elif not skip_special_tokens:
                out.append({PAD: "<pad>", AUDIO: "<audio>", EOS: "</s>"}[i])
        return "".join(out)

    def apply_chat_template(
        self,
        conversation: list[dict[str, Any]],
        add_generation_prompt: bool = False,
        tokenize: bool = False,
        return_dict: bool = False,
        return_tensors: str | None = None,
    ) -> dict[str, Any]:
        ids = self.encode(self.bos)
        clips: list[np.ndarray] = []
        for message in conversation:
            ids += self.encode(f"[{message['role']}]")
            for part in message["content"]:
                if part["type"] == "text":
                    ids += self.encode(part["text"])
                else:
                    ids.append(AUDIO)
                    clips.append(np.asarray(part["audio"], dtype=np.float32))
        if add_generation_prompt:
            ids += self.encode("[assistant]")
        longest = max((len(c) for c in clips), default=1)
        audio = torch.zeros((len(clips), longest))
        for i, clip in enumerate(clips):
            audio[i, : len(clip)] = torch.from_numpy(clip)
        return {
            "input_ids": torch.tensor([ids]),
            "attention_mask": torch.ones((1, len(ids)), dtype=torch.long),
            "audio": audio,
            "audio_lengths": torch.tensor([len(c) for c in clips], dtype=torch.long),
        }


class ToySpeechEncoderConnectorLLM(torch.nn.Module):
    def __init__(self, dim: int = 8, vocab_size: int = 100) -> None:
        super().__init__()
        self.config = SimpleNamespace(dim=dim, vocab_size=vocab_size, is_encoder_decoder=False)
        self.generation_config = SimpleNamespace(eos_token_id=EOS)
        self.encoder = torch.nn.Conv1d(1, dim, kernel_size=400, stride=160)
        self.connector = torch.nn.Linear(dim, dim)
        self.embed = torch.nn.Embedding(vocab_size, dim)
        self.collator = ToyCollator()
        self.seen_audio: list[tuple[tuple[int, ...], torch.dtype]] = []

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype | None = None) -> ToySpeechEncoderConnectorLLM:
        config = json.loads((Path(path) / "toy_config.json").read_text())
        model = cls(**config)
        model.load_state_dict(torch.load(Path(path) / "toy_model.pt", weights_only=True))
        return model.to(dtype) if dtype is not None else model

    def save_pretrained(self, path: str | Path) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "toy_config.json").write_text(
            json.dumps({"dim": self.config.dim, "vocab_size": self.config.vocab_size})
        )
        torch.save(self.state_dict(), Path(path) / "toy_model.pt")

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.weight.dtype

    def generate(  # no **kwargs, no sampling arguments: the engine passes only what this takes
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        audio_lengths: torch.Tensor | None = None,
        max_new_tokens: int = 20,
        streamer: Any = None,
        stopping_criteria: Any = None,
    ) -> torch.Tensor:
        clips = 0 if audio is None else audio.shape[0]
        if clips:
            self.seen_audio.append((tuple(audio.shape), audio.dtype))
            self.connector(self.encoder(audio[:, None, :]).mean(dim=-1))  # the audio goes through the network
        seconds = float(audio_lengths.sum()) / ToyCollator.sampling_rate if clips else 0.0
        prompt = self.collator.decode(input_ids[0], skip_special_tokens=False)
        last_text = prompt.rsplit("[user]", 1)[-1].removesuffix("[assistant]").replace("<audio>", "").strip()
        answer = self.collator.encode(f"heard {clips} clip(s), {seconds:.1f}s: {last_text}") + [EOS]
        sequence = input_ids
        if streamer is not None:
            streamer.put(input_ids.cpu())
        for token in answer[:max_new_tokens]:
            if stopping_criteria is not None and bool(stopping_criteria(sequence, None).all()):
                break
            step = torch.tensor([[token]], device=input_ids.device)
            sequence = torch.cat([sequence, step], dim=1)
            if streamer is not None:
                streamer.put(step[0].cpu())
        if streamer is not None:
            streamer.end()
        return sequence


def build_toy(directory: Path) -> Path:
    torch.manual_seed(0)
    ToySpeechEncoderConnectorLLM().save_pretrained(directory)
    ToyCollator().save_pretrained(directory)
    return directory
