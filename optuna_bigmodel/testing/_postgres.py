"""A throwaway PostgreSQL server on loopback, started from the machine's own binaries.

Tests of storage across workers use a real server, never a mock. The server lives in a temporary
folder, listens on 127.0.0.1 only, trusts local connections and is stopped and deleted afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


def postgres_bin_dir() -> str | None:
    """The folder holding initdb and pg_ctl, or None if PostgreSQL is not installed."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return os.path.dirname(os.path.realpath(on_path))
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


@contextmanager
def running_postgres(database: str = "optuna", *, durable: bool = True) -> Iterator[str]:
    """Starts a server, creates `database`, yields its SQLAlchemy URL, then removes everything.

    `durable=False` turns off fsync: faster for tests whose data is thrown away anyway.
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (no initdb found)")
    folder = tempfile.mkdtemp(prefix="obm-postgres-")
    port = _free_port()
    try:
        initdb = ["initdb", "-D", f"{folder}/data", "-A", "trust", "-U", "postgres"]
        _run_as_server_user(bin_dir, folder, initdb)
        _run_as_server_user(bin_dir, folder, [
            "pg_ctl", "-D", f"{folder}/data", "-l", f"{folder}/log", "-w", "start",
            "-o", f"-h 127.0.0.1 -p {port} -k {folder} -c max_connections=200{_fast(durable)}",
        ])  # fmt: skip
        _create_database(bin_dir, folder, port, database)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"
    finally:
        stop = ["pg_ctl", "-D", f"{folder}/data", "-m", "immediate", "stop"]
        _run_as_server_user(bin_dir, folder, stop, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _fast(durable: bool) -> str:
    return "" if durable else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def _create_database(bin_dir: str, folder: str, port: int, database: str) -> None:
    command = ["createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database]
    _run_as_server_user(bin_dir, folder, command)


def _run_as_server_user(bin_dir: str, folder: str, command: list[str], check: bool = True) -> None:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` system user."""
    command = [os.path.join(bin_dir, command[0]), *command[1:]]
    if os.geteuid() == 0:
        shutil.chown(folder, user="postgres")
        command = ["runuser", "-u", "postgres", "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
