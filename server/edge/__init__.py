"""The HTTP edge every route shares: API keys, the upload limit, OpenAI-shaped error bodies, upload names, audio
sent as text (data URLs, base64) and blocking work watched for a client that leaves."""
