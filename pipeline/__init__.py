"""A request's path through the models, free of HTTP: its preparation (model, language, capabilities), long-form
audio, the model pool and its batchers (``pool``), live sessions (``live``), chat completions (``chat``) and speaker
attribution."""
