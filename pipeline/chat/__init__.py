"""Chat completions with audio in the messages.

A transcription model (Whisper and the like) answers with the transcript of the last user message's audio
(``transcript_answer``); a chat model (engine ``speech_llm``) reads the whole conversation and writes the next
message (``generated_answer``). Every audio part is decoded as uploads are (``Transcriber.decode``: the one choke
point, the service's duration limit, its decode slots), before the model is leased; a part that cannot be decoded
fails the request with the part's place in the messages as its input. Nothing here knows HTTP: the server layer
turns requests into :class:`ChatRequest` and results into OpenAI's shapes.
"""

from .completion import Chat
from .limits import ChatLimits
from .stop_scanner import StopScanner
from .stream import ChatItem, ChatStream
from .types import AudioPart, ChatEnd, ChatMessage, ChatRequest, ChatResult, ChatUsage, FinishReason, Part, Role

__all__ = [
    "AudioPart",
    "Chat",
    "ChatEnd",
    "ChatItem",
    "ChatLimits",
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "ChatStream",
    "ChatUsage",
    "FinishReason",
    "Part",
    "Role",
    "StopScanner",
]
