"""Asynchronous jobs: OpenAI's Files and Batch APIs in domain terms (no HTTP). Durable state in a database
(``database``, ``tables``, Alembic ``migrations``) and a files directory (``files``); batches and their items
(``batches``, statuses in ``states``), their input read whole (``input_lines``) and their output written as
OpenAI's lines (``output_lines``); the background worker of a replica (``worker``); ``jobs`` builds them."""
