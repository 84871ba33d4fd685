#!/usr/bin/env bash
# Runs as root while the Bento image is built. The server runs as the `bentoml` user, yet the
# documented cache volume is mounted at /root/.cache/huggingface: make that path reachable and
# owned by `bentoml`, so a fresh named volume starts writable.
set -euo pipefail
mkdir -p /root/.cache/huggingface
chmod 711 /root
chown -R bentoml:bentoml /root/.cache
