"""A one-node Slurm cluster in a temporary folder, from Debian's ``slurm-wlm`` and ``munge`` packages, for the tests
of the Slurm executor.

``munged`` with a generated key, and ``slurmctld`` and ``slurmd`` on 127.0.0.1 (free ports, not Slurm's defaults)
with a minimal ``slurm.conf``: ``SlurmUser=root``, ``ProctrackType=proctrack/linuxproc`` (no cgroups in a
container), one node ``NodeAddr=127.0.0.1`` with ``CPUs=2`` (``CR_CPU``: a task asking for one CPU leaves the other
to a second task), every state, spool, log and pid path in the folder. The client commands find it through
``SLURM_CONF`` (``SlurmCluster.env``). All three daemons are stopped when the context ends. Where the packages are
missing or the daemons do not come up, ``SlurmUnavailable`` says why (the fixtures skip with that reason).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")
NODE = "sttnode"
PARTITION = "bulk"


class SlurmUnavailable(RuntimeError):
    """This machine cannot run the test cluster; the message says why (a missing package, a daemon that failed)."""


@dataclass(frozen=True)
class SlurmCluster:
    root: Path
    conf: Path
    partition: str
    cpus: int

    @property
    def env(self) -> dict[str, str]:
        """What a client command (and the bulk command that calls them) needs to reach this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=check,
                              env={**os.environ, **self.env})

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.root.glob("*.log")))


def missing_commands() -> list[str]:
    return [name for name in (*DAEMONS, *CLIENTS, "mungekey") if shutil.which(name) is None
            and not Path("/usr/sbin", name).exists()]


def _command(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slurm_conf(root: Path, cpus: int, task_plugin: str) -> str:
    host = socket.gethostname().split(".")[0]
    return "\n".join([
        "ClusterName=sttbulk",
        f"SlurmctldHost={host}(127.0.0.1)",
        "SlurmUser=root",
        "SlurmdUser=root",
        f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={root / 'munge.socket'}",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        f"TaskPlugin={task_plugin}",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_CPU",
        "SchedulerType=sched/backfill",
        "SchedulerParameters=sched_interval=1",
        "MpiDefault=none",
        "ReturnToService=2",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "MinJobAge=300",
        "KillWait=5",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=30",
        f"NodeName={NODE} NodeAddr=127.0.0.1 NodeHostname={host} CPUs={cpus} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO",
        "",
    ])


@contextmanager
def slurm_cluster(root: Path, cpus: int = 2, task_plugin: str = "task/none",
                  start_timeout_s: float = 60.0) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd under ``root``; yields once the node is idle; stops all three."""
    if os.geteuid() != 0:
        raise SlurmUnavailable("the test cluster runs its daemons as root (SlurmUser=root); this is not root")
    if missing := missing_commands():
        raise SlurmUnavailable(f"Slurm/munge not installed (missing {', '.join(missing)}): "
                               "apt-get install slurm-wlm munge")
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    for folder in ("state", "spool"):
        (root / folder).mkdir(exist_ok=True)
    key = root / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o600)
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, cpus, task_plugin))
    cluster = SlurmCluster(root, conf, PARTITION, cpus)
    env = {**os.environ, **cluster.env}
    with ExitStack() as stack:
        munged = [_command("munged"), "--foreground", "--force", f"--key-file={key}",
                  f"--socket={root / 'munge.socket'}", f"--pid-file={root / 'munged.pid'}",
                  f"--log-file={root / 'munged.log'}", f"--seed-file={root / 'munged.seed'}"]
        stack.enter_context(_daemon(munged, root / "munged.out", env))
        _wait(lambda: (root / "munge.socket").exists(), 10, "munged did not create its socket", cluster)
        stack.enter_context(_daemon([_command("slurmctld"), "-D", "-i", "-f", str(conf)], root / "slurmctld.out", env))
        stack.enter_context(_daemon([_command("slurmd"), "-D", "-N", NODE, "-f", str(conf)], root / "slurmd.out", env))
        _wait(lambda: _node_state(cluster) in {"idle", "mixed", "allocated"}, start_timeout_s,
              "the node did not become idle", cluster)
        yield cluster


def _node_state(cluster: SlurmCluster) -> str:
    try:
        done = cluster.run("sinfo", "-h", "-n", NODE, "-o", "%T", check=False)
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout.strip().rstrip("*~#")


def _wait(condition, timeout_s: float, what: str, cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SlurmUnavailable(f"{what} within {timeout_s:.0f} s:\n{cluster.logs()}")
        time.sleep(0.5)


@contextmanager
def _daemon(command: list[str], output: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    with output.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        time.sleep(0.3)
        if process.poll() is not None:
            raise SlurmUnavailable(f"{command[0]} exited with {process.returncode}: "
                                   f"{output.read_text(errors='replace')[-2000:]}")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
