"""What test modules share besides the fake engines (``tests/fakes.py``) and the fixtures (``tests/conftest.py``):
audio makers, token helpers, transcribers built on fakes, the engine checks and the stand-in speech-LLMs."""
