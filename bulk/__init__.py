"""The bulk runner: a JSONL manifest of recordings in, one output file per id out, resumable by running the same
command again. ``python -m bulk run MANIFEST --out DIR --executor http|inprocess``.

``manifest`` reads and validates the items, ``outputs`` is the output contract (per-id files with their
fingerprint, ``failures.jsonl``, the resume rule) that every executor shares, ``executors`` run the items
(``http`` against running replicas, ``inprocess`` with the project's own transcriber), ``runner`` ties them
together with ``progress`` and ``summary``."""
