"""``tinyformers serve``: the class deployment of ``deploy/compose.yaml`` on one machine.

N web replicas (``streamlit run app``, each a process of its own on a free local port) behind
Debian's nginx, configured from ``deploy/nginx.conf`` with only its replica list and its listening
port changed. Every replica gets the settings of ``deploy/hosting.env`` (the environment wins)
and one shared cookie secret, and has every page opened once (``deploy/warm_up.py``) before
nginx starts. Ctrl-C or SIGTERM stops nginx and then every replica; a replica that dies is
started again on its port.

Streamlit runs only in the child processes: this module never imports it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tinyformers.hosting import Hosting

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = ROOT / "deploy"
NGINX_CONF = DEPLOY_DIR / "nginx.conf"
HOSTING_ENV = DEPLOY_DIR / "hosting.env"
WARM_UP = DEPLOY_DIR / "warm_up.py"
NGINX = "/usr/sbin/nginx"
REPLICAS_MARK = "# serve: replicas"
LISTEN_MARK = "# serve: listen"
HEALTH = "/_stcore/health"


class ServeError(RuntimeError):
    """The layout cannot start; the message says why."""


class Stop(Exception):
    """Raised in the main thread by SIGTERM (and SIGHUP) so that everything shuts down."""


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of an env file as Docker Compose reads them (``#`` starts a comment)."""
    values = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ServeError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        values[key.strip()] = value.strip()
    return values


def nginx_config(
    template: str, replica_ports: Sequence[int], listen: str, upstream_host: str = "127.0.0.1"
) -> str:
    """``deploy/nginx.conf`` with its replicas and its listening address replaced."""
    out, seen = [], {REPLICAS_MARK: 0, LISTEN_MARK: 0}
    for line in template.splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        if REPLICAS_MARK in line:
            seen[REPLICAS_MARK] += 1
            out += [f"{indent}server {upstream_host}:{port};" for port in replica_ports]
        elif LISTEN_MARK in line:
            seen[LISTEN_MARK] += 1
            out.append(f"{indent}listen {listen};")
        else:
            out.append(line)
    wrong = [mark for mark, count in seen.items() if count != 1]
    if wrong:
        raise ServeError(f"the nginx template must hold exactly one line marked {wrong[0]!r}")
    return "\n".join(out) + "\n"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def replica_environment(environ: Mapping[str, str], hosting: Mapping[str, str]) -> dict[str, str]:
    """Hosting settings under the caller's environment, with one cookie secret for all; with
    ``TINYFORMERS_HOSTED=1``, Streamlit's class-server settings (no error details in the
    browser, XSRF protection, the upload limit) unless a variable of their own is set."""
    env = {**hosting, **environ}
    env.setdefault("STREAMLIT_SERVER_COOKIE_SECRET", secrets.token_hex(32))
    try:
        hosted = Hosting.from_env(env)
    except ValueError as err:
        raise ServeError(str(err)) from None
    for name, value in hosted.streamlit_environment().items():
        env.setdefault(name, value)
    return env


def streamlit_command(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
    ]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + HEALTH, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@dataclass
class Layout:
    """The running processes: web replicas and nginx in front of them."""

    replicas: int
    port: int
    address: str = "0.0.0.0"
    nginx: str = NGINX
    warm_up: bool = True  # open every page of each replica once before nginx lets browsers in
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    replica_ports: list[int] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)
    nginx_process: subprocess.Popen | None = None
    prefix: Path | None = None

    def start(self, timeout: float = 600) -> None:
        if self.replicas < 1:
            raise ServeError("--replicas must be at least 1")
        if not Path(self.nginx).is_file():
            raise ServeError(
                f"no nginx at {self.nginx}: install Debian's (apt-get install nginx) or pass --nginx"
            )
        if not (ROOT / "app").is_dir() or not NGINX_CONF.is_file():
            raise ServeError(f"serve runs from a source checkout (pip install -e .); {ROOT} is not")
        self.env = replica_environment(self.environ, read_env_file(HOSTING_ENV))
        self.replica_ports = [free_port() for _ in range(self.replicas)]
        self.processes = [self._start_replica(port) for port in self.replica_ports]
        deadline = time.monotonic() + timeout
        for index, port in enumerate(self.replica_ports):
            self._wait(f"http://127.0.0.1:{port}", deadline, lambda i=index: self.processes[i])
        if self.warm_up:
            self._warm_up(deadline)
        self._start_nginx()
        self._wait(self.local_url, deadline, lambda: self.nginx_process)

    @property
    def local_url(self) -> str:
        host = "127.0.0.1" if self.address in ("0.0.0.0", "") else self.address
        return f"http://{host}:{self.port}"

    def _start_replica(self, port: int) -> subprocess.Popen:
        return subprocess.Popen(
            streamlit_command(port), cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL
        )

    def _warm_up(self, deadline: float) -> None:
        """Every page run once on each replica (deploy/warm_up.py), so that a class arriving
        at once finds the models loaded and the default figures computed. A page that fails
        here is reported, and the layout serves anyway."""
        urls = [f"http://127.0.0.1:{port}" for port in self.replica_ports]
        try:
            done = subprocess.run(
                [sys.executable, str(WARM_UP), *urls],
                cwd=ROOT,
                env=self.env,
                stdout=sys.stderr,  # standard output says only when the layout serves
                timeout=max(1.0, deadline - time.monotonic()),
            )
        except subprocess.TimeoutExpired:
            print("warming the replicas took too long; serving anyway", file=sys.stderr)
            return
        if done.returncode != 0:
            print("some pages failed while warming the replicas; serving anyway", file=sys.stderr)

    def _start_nginx(self) -> None:
        self.prefix = Path(tempfile.mkdtemp(prefix="tinyformers-nginx-"))
        self.prefix.chmod(0o755)  # nginx's workers (another user when run as root) write here
        listen = (
            str(self.port) if self.address in ("0.0.0.0", "") else f"{self.address}:{self.port}"
        )
        config = nginx_config(NGINX_CONF.read_text(encoding="utf-8"), self.replica_ports, listen)
        conf = self.prefix / "nginx.conf"
        conf.write_text(config, encoding="utf-8")
        command = [self.nginx, "-p", f"{self.prefix}/", "-c", str(conf), "-e", "stderr"]
        self.nginx_process = subprocess.Popen([*command, "-g", "daemon off;"])

    def _wait(self, url: str, deadline: float, process) -> None:
        while not healthy(url):
            if process().poll() is not None:
                raise ServeError(f"{process().args[0]} for {url} exited ({process().returncode})")
            if time.monotonic() > deadline:
                raise ServeError(f"{url} did not become healthy")
            time.sleep(0.2)

    def watch(self) -> None:
        """Keep the replicas running until nginx exits (or Stop is raised)."""
        while self.nginx_process.poll() is None:
            for index, process in enumerate(self.processes):
                if process.poll() is not None:
                    port = self.replica_ports[index]
                    print(
                        f"replica on port {port} exited ({process.returncode}); starting it again",
                        file=sys.stderr,
                        flush=True,
                    )
                    self.processes[index] = self._start_replica(port)
            time.sleep(0.5)
        raise ServeError(f"nginx exited ({self.nginx_process.returncode})")

    def stop(self) -> None:
        """nginx first (no new requests), then every replica; waits for all of them."""
        for group in ([self.nginx_process], self.processes):
            running = [p for p in group if p is not None and p.poll() is None]
            for process in running:
                process.terminate()
            for process in running:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self.prefix is not None:
            shutil.rmtree(self.prefix, ignore_errors=True)
            self.prefix = None


def _raise_stop(signum, frame) -> None:
    raise Stop(signal.Signals(signum).name)


def serve(
    replicas: int,
    port: int,
    address: str = "0.0.0.0",
    nginx: str = NGINX,
    warm_up: bool = True,
) -> int:
    """Run the layout in the foreground until Ctrl-C or SIGTERM; 0 after a clean stop."""
    layout = Layout(replicas=replicas, port=port, address=address, nginx=nginx, warm_up=warm_up)
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        layout.start()
        ports = ", ".join(map(str, layout.replica_ports))
        print(
            f"Tinyformers is served at {layout.local_url} by nginx in front of "
            f"{replicas} replica{'s' if replicas > 1 else ''} (local ports {ports})",
            flush=True,
        )
        layout.watch()
    except (KeyboardInterrupt, Stop):
        return 0
    except ServeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        for signum in (signal.SIGINT, *previous):
            signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not leave processes
        layout.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        print("stopped nginx and every replica", flush=True)
    return 0
