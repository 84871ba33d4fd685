"""Requests an attacker or a careless client would send, run against a real ``bentoml serve``: for each case, the
statuses it got, the server's peak memory above idle and the CPU time it cost (``python -m bench.abuse``).

Each module of this package holds cases of one kind (``CASES``); ``__main__`` runs them one after another on one
server and prints a table. The cheap cases also run in CI as end-to-end tests."""
