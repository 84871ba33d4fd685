"""The executors: each takes the items still to do and yields one outcome per item, in the order they finish.
``base`` is the interface (and what the cluster executors implement), ``http`` drives running replicas,
``inprocess`` runs the project's own transcriber in this process, ``ray`` runs it on a Ray actor pool."""
