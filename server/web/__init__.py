"""The try-it page at ``/`` and its static files."""
