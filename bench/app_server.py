"""Start the app the way a student does (``streamlit run app``) on a free local port, for the
benchmarks and the tests that need a real server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(
    port: int, extra_env: dict[str, str] | None = None, script: str = "app", cwd: Path = ROOT
) -> subprocess.Popen:
    """``streamlit run app`` on ``port``, with the settings of the repository's
    ``.streamlit/config.toml`` as a student gets them (or ``script`` in the folder ``cwd``)."""
    command = [
        sys.executable, "-m", "streamlit", "run", script,
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, **(extra_env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    """Wait until the server answers ``/_stcore/health`` (a limit, not an expected time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"streamlit did not become healthy at {url} within {timeout} s")


def start_server(extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = launch(port, extra_env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
    except Exception:
        process.kill()
        raise
    return process, url


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@contextmanager
def serving(extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """A running app for the duration of a ``with`` block; yields its URL."""
    process, url = start_server(extra_env)
    try:
        yield url
    finally:
        stop_server(process)
