"""The models a request may name: ``whisper-1`` and the registry's ids, ``/v1/models`` and the operator's
``/v1/admin/models`` routes."""
