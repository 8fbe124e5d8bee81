"""The store under test, on SQLite and on a throwaway PostgreSQL server.

The PostgreSQL server is Debian's (``apt-get install postgresql``), started once per session in a
temporary folder on a free local port and removed at the end. ``initdb`` refuses to run as
root, so under root the server runs as the ``postgres`` system user. Without PostgreSQL the
PostgreSQL cases skip, except under CI (``CI`` set), where they fail: CI installs it.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tinyformers.store import Store, open_store

INITDB = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
SERVER_SETTINGS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
    "-c full_page_writes=off -c max_connections=50"
)


def missing(message: str) -> None:
    """Skip, or under CI fail: a skip there would hide every PostgreSQL test."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class PostgresServer:
    """A running server that trusts local connections as the ``postgres`` role."""

    port: int

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = f"store_{secrets.token_hex(6)}"
        conninfo = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session, stopped and removed at its end."""
    if not INITDB:
        missing("PostgreSQL tests need Debian's postgresql (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("PostgreSQL tests need the psycopg package (the test extra)")
    bin_dir = Path(INITDB[-1]).parent
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="tinyformers-pg-"))
    sockets = base / "sockets"
    sockets.mkdir()
    if as_postgres:
        for folder in (base, sockets):
            shutil.chown(folder, "postgres", "postgres")
    data, log = base / "data", base / "server.log"
    pg_ctl = [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data)]
    try:
        run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
             "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])  # fmt: skip
        port = free_port()
        options = f"-p {port} -k {sockets} {SERVER_SETTINGS}"
        run([*pg_ctl, "-o", options, "-l", str(log), "-w", "start"], log=log)
        yield PostgresServer(port)
        run([*pg_ctl, "-m", "fast", "-w", "stop"], log=log)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run(command: list[str], log: Path | None = None) -> None:
    """Run a PostgreSQL tool; on failure, fail with its output (and the server's log)."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        server_log = log.read_text() if log is not None and log.exists() else ""
        pytest.fail(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}{server_log}")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> str:
    """The URL of a new, empty database: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture
def store(database) -> Iterator[Store]:
    """An open store on a new database."""
    opened = open_store(database)
    yield opened
    opened.close()
