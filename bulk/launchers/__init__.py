"""Launchers: run the bulk command on a cluster's scheduler instead of in this process. A launcher yields no
outcomes (the scheduler's tasks run the ordinary runner on their shard and write the output folder themselves), so it
sits beside the runner, not among the executors: it plans the shards from the output folder (``bulk.status``),
submits, waits and summarises from the same folder."""
