"""The HTTP layer: one folder per API area (``audio``, ``models``, ``realtime``, ``chat``, the ``web`` page), the
``edge`` every route shares (keys, upload limit, error bodies) and ``observability``; at the top, the composition
(``settings``, ``wiring``, ``collaborators``, the ``/v1`` app in ``openai_app``) and the stream skeleton."""
