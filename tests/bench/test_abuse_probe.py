from __future__ import annotations

import os
import signal
import subprocess
import sys

from bench.abuse.probe import resident_and_cpu, session_pids

GRANDCHILD = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(60)\n"
)


def test_a_servers_workers_count_even_in_sessions_of_their_own():
    # BentoML's workers call setsid: a probe of the server's session alone saw none of their memory.
    server = subprocess.Popen([sys.executable, "-c", GRANDCHILD], start_new_session=True, stdout=subprocess.PIPE,
                              text=True)
    worker = int(server.stdout.readline())
    try:
        assert os.getsid(worker) != server.pid
        assert {server.pid, worker} <= set(session_pids(server.pid))
        alone, _ = resident_and_cpu(server.pid)
        assert alone > 2 * 5 * 2**20  # two Python processes, not one
    finally:
        os.kill(worker, signal.SIGKILL)
        server.kill()
        server.wait()
        server.stdout.close()
