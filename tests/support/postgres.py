"""A throwaway PostgreSQL for the tests: Debian's server binaries (``initdb``, ``pg_ctl``) on a temporary folder,
listening on 127.0.0.1 only (a free port, no Unix socket), stopped and removed afterwards. ``initdb`` refuses to run
as root: as root the server runs as the ``postgres`` user the package creates. ``Unavailable`` says why it could not
start (the tests skip with that reason)."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.server import free_port

BIN = Path(os.environ.get("STT_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))


class Unavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database's URL."""
        import psycopg

        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    if not (BIN / "initdb").exists():
        raise Unavailable(f"no PostgreSQL server binaries in {BIN} (Debian's postgresql package)")
    as_user: list[str] = []
    user = pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no postgres user to run the server as") from None
        as_user, user = ["runuser", "-u", "postgres", "--"], "postgres"
    root = Path(tempfile.mkdtemp(prefix="stt-pg-"))
    data, log = root / "data", root / "server.log"
    if as_user:
        shutil.chown(root, "postgres")
    port = free_port()
    try:
        _run([*as_user, str(BIN / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"])
        options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' -c fsync=off"
        _run([*as_user, str(BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60",
              "start"])
        try:
            yield Postgres("127.0.0.1", port, user)
        finally:
            subprocess.run([*as_user, str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(command: list[str]) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"{command[-1]}: {exc}") from None
    if result.returncode != 0:
        raise Unavailable(f"{' '.join(command)} failed: {result.stderr[-2000:] or result.stdout[-2000:]}")
