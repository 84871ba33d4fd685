"""The bulk runner: a JSONL manifest of recordings in, one output file per id out, resumable by running the same
command again. ``python -m bulk run MANIFEST --out DIR --executor http|inprocess|slurm``; ``python -m bulk status``.

``manifest`` reads and validates the items, ``sharding`` splits them by a stable hash of the id, ``outputs`` is the
output contract (per-id result and failure files with their fingerprint, the ``failures.jsonl`` index, the resume
rule) that every executor shares, ``status`` reads where a run stands from the folder, ``executors`` run the items
(``http`` against running replicas, ``inprocess`` with the project's own transcriber), ``runner`` ties them
together with ``progress`` and ``summary``; ``launchers.slurm`` runs the runner as a Slurm job array."""
