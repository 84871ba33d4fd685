"""A request's path through the models: the transcriber, the model pool and its batchers, long-form
audio, the language policy and speaker attribution. Knows nothing of HTTP."""
