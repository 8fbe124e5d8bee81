"""Where the store lives, and opening it: SQLite by default, PostgreSQL for a hosted course.

``TINYFORMERS_DATABASE_URL`` names the database; without it the store is one SQLite file beside
the saved work (``<TINYFORMERS_WORK_DIR>/tinyformers.sqlite3``), which needs no set-up. A hosted
course with several web replicas on several machines points every replica at one PostgreSQL
database (``postgresql://user:password@host:5432/dbname``, through psycopg 3).

``open_store`` brings the database's tables up to date with the migrations shipped in
``store/migrations`` before returning, so a new release migrates on its first start. Several
processes may open the same new database at once: one migrates while the others wait (an
advisory lock on PostgreSQL, a write transaction on SQLite), then they find it up to date.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from tinyformers.store.checks import StoreError

DATABASE_URL_ENV = "TINYFORMERS_DATABASE_URL"
DEFAULT_FILE = "tinyformers.sqlite3"
BUSY_TIMEOUT_MS = 30_000  # how long a SQLite writer waits for another one to finish
WAL_RETRY_SECONDS = 0.01
MIGRATION_LOCK = 7_311_042_021  # the PostgreSQL advisory lock key that migrations hold
WRITE = "tinyformers_write"  # execution option: this connection's transaction will write
URL_FORMS = "sqlite:///path/to/file.sqlite3 or postgresql://user:password@host:5432/dbname"
POSTGRES_BACKENDS = {"postgresql", "postgres"}  # any driver named is replaced by psycopg
SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}


def database_url(env: Mapping[str, str] = os.environ) -> str:
    """``TINYFORMERS_DATABASE_URL``, or the SQLite file in the saved-work folder."""
    configured = env.get(DATABASE_URL_ENV, "").strip()
    if configured:
        return configured
    # Imported here: the saved work's module brings torch, which a store on a URL never needs.
    from tinyformers.hub.workspace import WORK_DIR_ENV, default_root

    root = Path(env[WORK_DIR_ENV]) if env.get(WORK_DIR_ENV) else default_root()
    return f"sqlite:///{root / DEFAULT_FILE}"


class Store:
    """An open store: the engine, and transactions that read or write."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction that only reads."""
        with self.engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that writes, committed at the end of the block unless it raised.

        On SQLite it starts with ``BEGIN IMMEDIATE``: it takes the write lock first (waiting up
        to the busy timeout for another writer), so a transaction that read something never
        fails later for want of the lock.
        """
        with self.engine.connect() as connection:
            connection.execution_options(**{WRITE: True})
            with connection.begin():
                yield connection

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(url: str | None = None) -> Store:
    """Open (creating or migrating as needed) the database at ``url``, by default
    ``database_url()``."""
    parsed = parse_url(database_url() if url is None else url)
    engine = make_engine(parsed)
    try:
        migrate(engine)
    except DBAPIError as error:
        engine.dispose()
        raise StoreError(
            f"cannot open the database {safe(parsed)}: {reason(error, parsed)}"
        ) from None
    except CommandError as error:
        engine.dispose()
        raise StoreError(
            f"cannot migrate the database {safe(parsed)} ({error}); was it made by a newer "
            "release of tinyformers?"
        ) from None
    return Store(engine)


def parse_url(url: str) -> URL:
    """The URL of a database the store supports, with PostgreSQL's driver set to psycopg 3."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        raise StoreError(f"the database URL cannot be read; use {URL_FORMS}") from None
    if parsed.get_backend_name() in POSTGRES_BACKENDS:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in SQLITE_DRIVERS:
        if not parsed.database or parsed.database == ":memory:":
            raise StoreError(f"a SQLite store needs a file path; use {URL_FORMS}")
        return parsed
    raise StoreError(f"the store does not support {parsed.drivername!r} databases; use {URL_FORMS}")


def safe(url: URL) -> str:
    """The URL as it may be shown: without its password."""
    return url.render_as_string(hide_password=True)


def reason(error: DBAPIError, url: URL) -> str:
    """The first line of the driver's message, without the URL's password."""
    lines = str(error.orig).strip().splitlines()
    line = lines[0] if lines else type(error.orig).__name__
    return line.replace(url.password, "***") if url.password else line


def make_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        return sqlite_engine(url)
    try:
        return create_engine(url, pool_pre_ping=True)
    except ImportError:
        raise StoreError(
            "a PostgreSQL store needs the psycopg package: pip install 'psycopg[binary]'"
        ) from None


def sqlite_engine(url: URL) -> Engine:
    """A SQLite engine in WAL mode (readers never wait for the writer) with a busy timeout,
    whose transactions SQLAlchemy begins itself (``BEGIN`` or ``BEGIN IMMEDIATE``)."""
    folder = Path(url.database).expanduser().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"cannot make the database's folder {folder}: {error.strerror}") from None
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
    )

    @event.listens_for(engine, "connect")
    def set_pragmas(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # no implicit BEGIN from the sqlite3 module
        dbapi_connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        enable_wal(dbapi_connection)
        dbapi_connection.execute("PRAGMA synchronous = NORMAL")

    @event.listens_for(engine, "begin")
    def begin(connection: Connection) -> None:
        writes = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


def enable_wal(dbapi_connection: sqlite3.Connection) -> None:
    """Put the database file in WAL mode (it stays in it).

    Switching needs the file to itself, and while another process holds it SQLite answers
    "database is locked" at once rather than after its busy timeout (as when several replicas
    open a new database together), so the switch is tried again for up to that timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            dbapi_connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(WAL_RETRY_SECONDS)


def migrate(engine: Engine) -> None:
    """Bring the tables up to the newest migration, one process at a time."""
    with engine.connect() as connection:
        connection.execution_options(**{WRITE: True})
        with connection.begin():
            if engine.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
            upgrade(connection)


def upgrade(connection: Connection) -> None:
    """Alembic's ``upgrade head`` inside the caller's transaction."""
    config = Config()
    config.set_main_option("script_location", str(migrations_folder()).replace("%", "%%"))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def migrations_folder() -> Path:
    """``store/migrations``, shipped inside the package."""
    return Path(str(resources.files("tinyformers.store") / "migrations"))
