"""The HTTP edge every route shares: API keys, the upload limit, OpenAI-shaped error bodies, upload names and
blocking work watched for a client that leaves."""
