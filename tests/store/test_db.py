"""Opening the store: where it lives, which URLs it takes, and the schema its migrations make."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from importlib import resources
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from tinyformers.hub.workspace import WorkLimits, new_id, prune
from tinyformers.store import StoreError, database_url, open_store, record_answer
from tinyformers.store.db import DATABASE_URL_ENV, parse_url
from tinyformers.store.schema import metadata

from .conftest import free_port

ROOT = Path(__file__).resolve().parents[2]

# --- where the store lives ---------------------------------------------------------------


def test_the_database_url_comes_from_the_environment() -> None:
    url = "postgresql://course:pw@db.example:5432/tinyformers"
    assert database_url({DATABASE_URL_ENV: url}) == url


def test_without_a_url_the_store_is_a_sqlite_file_beside_the_saved_work(tmp_path) -> None:
    env = {"TINYFORMERS_WORK_DIR": str(tmp_path / "work")}
    assert database_url(env) == f"sqlite:///{tmp_path}/work/tinyformers.sqlite3"


def test_the_default_folder_is_the_saved_works_default(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("TINYFORMERS_WORK_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = tmp_path / ".cache" / "tinyformers" / "work" / "tinyformers.sqlite3"
    assert database_url({}) == f"sqlite:///{expected}"


def test_pruning_saved_work_leaves_the_database_alone(tmp_path) -> None:
    root = tmp_path / "work"
    store = open_store(database_url({"TINYFORMERS_WORK_DIR": str(root)}))
    record_answer(store, browser="b1", lesson="gpt", question="q", answer="a", correct=True)
    old = root / new_id()
    old.mkdir()
    assert prune(root, WorkLimits(max_age_days=1), now=time.time() + 30 * 86_400) == [old.name]
    assert {p.name for p in root.iterdir()} >= {"tinyformers.sqlite3"}
    assert store.engine.connect().execute(text("SELECT count(*) FROM answers")).scalar() == 1
    store.close()


# --- which URLs it takes ---------------------------------------------------------------------


def test_a_postgresql_url_is_given_the_psycopg_driver() -> None:
    for scheme in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        url = parse_url(f"{scheme}://u:pw@db:5432/course")
        assert url.drivername == "postgresql+psycopg"
        assert (url.host, url.port, url.database, url.password) == ("db", 5432, "course", "pw")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://admin:hunter2@db/course", "does not support 'mysql' databases"),
        ("hunter2 is not a url", "the database URL cannot be read"),
        ("postgresql://admin:hunter2@db:port/course", "the database URL cannot be read"),
        ("sqlite://", "a SQLite store needs a file path"),
        ("sqlite:///:memory:", "a SQLite store needs a file path"),
        ("sqlite+aiosqlite:///x.db", "does not support 'sqlite+aiosqlite' databases"),
    ],
)
def test_a_url_the_store_cannot_use_is_refused_without_its_password(url, message) -> None:
    with pytest.raises(StoreError, match=re.escape(message)) as refused:
        open_store(url)
    assert "hunter2" not in str(refused.value)
    assert "sqlite:///path/to/file.sqlite3 or postgresql://" in str(refused.value)


def test_an_unreachable_database_is_a_store_error_without_the_password() -> None:
    url = f"postgresql://admin:hunter2@127.0.0.1:{free_port()}/course"
    with pytest.raises(StoreError, match="cannot open the database") as refused:
        open_store(url)
    assert "hunter2" not in str(refused.value)
    assert "admin:***@127.0.0.1" in str(refused.value)


def test_the_store_imports_and_runs_on_sqlite_without_psycopg(tmp_path) -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from tinyformers.store import open_store, record_answer, StoreError\n"
        f"store = open_store('sqlite:///{tmp_path}/s.sqlite3')\n"
        "record_answer(store, browser='b', lesson='gpt', question='q', answer='a', correct=True)\n"
        "try:\n"
        "    open_store('postgresql://u@127.0.0.1/course')\n"
        "except StoreError as error:\n"
        "    assert 'psycopg' in str(error), error\n"
        "else:\n"
        "    raise AssertionError('a PostgreSQL URL opened without psycopg')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy())


# --- the schema --------------------------------------------------------------------------


def test_opening_creates_the_tables_at_the_newest_migration(store) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert tables == {"answers", "rooms", "alembic_version"}
    with store.read() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [
            ("0001",)
        ]


def test_the_migrations_make_the_schema_of_schema_py(store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_reopening_a_database_changes_nothing(database) -> None:
    first = open_store(database)
    record_answer(first, browser="b1", lesson="gpt", question="q", answer="a", correct=True)
    first.close()
    again = open_store(database)
    with again.read() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        assert connection.execute(text("SELECT browser FROM answers")).all() == [("b1",)]
    again.close()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/s.sqlite3")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    store.close()


# --- the package ships its migrations ------------------------------------------------------


def test_the_migrations_are_package_resources() -> None:
    migrations = resources.files("tinyformers.store") / "migrations"
    assert (migrations / "env.py").is_file()
    assert (migrations / "script.py.mako").is_file()
    versions = [p.name for p in (migrations / "versions").iterdir()]
    assert "0001_initial.py" in versions


def test_a_built_wheel_ships_the_migrations(tmp_path) -> None:
    """A regular (non-editable) install has the migrations: build a wheel from a copy of the
    source (the checkout itself is left untouched) and read its file list."""
    source = tmp_path / "source"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", source / "src", ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = "from setuptools import build_meta; print(build_meta.build_wheel('../wheel'))"
    done = subprocess.run(
        [sys.executable, "-c", build], cwd=source, capture_output=True, text=True, check=True
    )
    wheel = tmp_path / "wheel" / done.stdout.strip().splitlines()[-1]
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = "tinyformers/store/migrations/"
    for shipped in ("env.py", "script.py.mako", "versions/0001_initial.py"):
        assert migrations + shipped in names


def test_a_database_from_a_newer_release_is_refused(database) -> None:
    newer = open_store(database)
    with newer.write() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    newer.close()
    with pytest.raises(StoreError, match="was it made by a newer release of tinyformers"):
        open_store(database)


def test_a_folder_the_database_cannot_be_made_in_is_a_store_error(tmp_path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreError, match="cannot make the database's folder"):
        open_store(f"sqlite:///{tmp_path}/file/inside/s.sqlite3")
