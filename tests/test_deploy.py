"""The class deployment: deploy/compose.yaml, deploy/nginx.conf, deploy/hosting.env and the
one-machine layout of ``tinyformers serve`` (replicas behind Debian's nginx)."""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
import yaml

from tinyformers.serve import (
    HOSTING_ENV,
    LISTEN_MARK,
    NGINX,
    NGINX_CONF,
    REPLICAS_MARK,
    ServeError,
    nginx_config,
    read_env_file,
)

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
HEALTH = "/_stcore/health"


# --- compose.yaml and the Dockerfile ------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs of deploy/Dockerfile, continuation lines joined."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9._-]+", r).group(0).lower() for r in requirements}


def command_of(service: dict, dockerfile: list[tuple[str, str]]) -> list[str]:
    command = service.get("command")
    if command is None:  # the image's own CMD
        command = yaml.safe_load([args for op, args in dockerfile if op == "CMD"][-1])
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_each_service_runs_a_command_the_image_has(compose, dockerfile) -> None:
    services = compose["services"]
    assert {"app", "nginx", "ray-head", "ray-worker"} <= set(services)
    project = pyproject()["project"]
    base = requirement_names(project["dependencies"])
    extras = {k: requirement_names(v) for k, v in project["optional-dependencies"].items()}
    install = " ".join(args for op, args in dockerfile if op == "RUN" and "pip install -e" in args)
    installed = set(base)
    for extra in re.findall(r"\.\[([a-z,]+)\]", install):
        for name in extra.split(","):
            assert name in extras, f"the Dockerfile installs an extra pyproject lacks: {name}"
            installed |= extras[name]
    for name, service in services.items():
        if "build" in service:
            build = service["build"]
            assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == (
                DEPLOY / "Dockerfile"
            ), name
            command = command_of(service, dockerfile)
            program = command[0]
            assert program in {"streamlit", "ray"}, f"{name} runs {program}"
            assert program in installed, f"{name} runs {program}, which the image does not install"
            if program == "streamlit":
                assert command[1:] == ["run", "app"], name
                assert (ROOT / "app" / "streamlit_app.py").is_file()
            else:
                assert command[1] == "start" and "--block" in command, name
        else:
            assert service["image"].startswith("nginx:"), f"{name} uses {service['image']}"
            mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
            assert (DEPLOY / mounts["/etc/nginx/nginx.conf"]).resolve() == NGINX_CONF


def test_the_image_copies_files_of_the_repository(dockerfile) -> None:
    for op, args in dockerfile:
        if op == "COPY":
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
    assert any(op == "USER" and args != "root" for op, args in dockerfile), "runs as root"
    assert any("download.pytorch.org/whl/cpu" in args for op, args in dockerfile if op == "ARG")


def test_web_replicas_are_health_checked_and_share_a_secret_and_saved_work(
    compose, dockerfile
) -> None:
    (check,) = [args for op, args in dockerfile if op == "HEALTHCHECK"]
    assert f"127.0.0.1:8501{HEALTH}" in check
    app = compose["services"]["app"]
    assert app["environment"]["STREAMLIT_SERVER_PORT"] == "8501"
    assert (
        "STREAMLIT_SERVER_COOKIE_SECRET:?" in app["environment"]["STREAMLIT_SERVER_COOKIE_SECRET"]
    )
    assert (DEPLOY / app["env_file"][0]).resolve() == HOSTING_ENV
    work = app["environment"]["TINYFORMERS_WORK_DIR"]
    assert any(
        v.split(":")[0] in compose["volumes"] and v.split(":")[1] == work for v in app["volumes"]
    )
    assert app["environment"]["TINYFORMERS_RAY_ADDRESS"].endswith("ray://ray-head:10001}")
    assert "replicas" in app["deploy"]
    nginx = compose["services"]["nginx"]
    assert nginx["depends_on"]["app"]["condition"] == "service_healthy"
    # Ray runs from the same image, whose health check asks for a web page: replaced there.
    head, worker = compose["services"]["ray-head"], compose["services"]["ray-worker"]
    assert "health-check" in head["healthcheck"]["test"] and worker["healthcheck"]["disable"]
    assert "--ray-client-server-port=10001" in head["command"]
    assert any(arg.startswith("--address=ray-head:") for arg in worker["command"])


def test_hosting_settings_are_streamlit_options_or_documented() -> None:
    from streamlit import config

    settings = read_env_file(HOSTING_ENV)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    options = {option.env_var for option in config.get_config_options().values()}
    for name in settings:
        if name.startswith("STREAMLIT_"):
            assert name in options, f"{name} is no Streamlit option"
        else:
            assert name.startswith("TINYFORMERS_") and f"`{name}`" in readme, name


# --- nginx.conf ---------------------------------------------------------------------------


def parse_nginx(text: str) -> list:
    """nginx's syntax as nested lists: [name, args, children-or-None] per directive."""
    tokens = re.findall(r'"[^"]*"|\'[^\']*\'|[{};]|[^\s{};"\']+', re.sub(r"#[^\n]*", "", text))
    position = 0

    def block() -> list:
        nonlocal position
        directives, words = [], []
        while position < len(tokens):
            token = tokens[position]
            position += 1
            if token == ";":
                directives.append([words[0], words[1:], None])
                words = []
            elif token == "{":
                directives.append([words[0], words[1:], block()])
                words = []
            elif token == "}":
                break
            else:
                words.append(token.strip("\"'"))
        assert not words, f"unterminated directive {words}"
        return directives

    return block()


def find(directives: list, name: str, *args: str) -> list:
    return [d for d in directives if d[0] == name and tuple(d[1][: len(args)]) == args]


def headers(directives: list) -> dict[str, str]:
    return {d[1][0].lower(): " ".join(d[1][1:]) for d in find(directives, "proxy_set_header")}


@pytest.fixture(scope="module")
def http() -> list:
    (http,) = find(parse_nginx(NGINX_CONF.read_text(encoding="utf-8")), "http")
    return http[2]


def test_nginx_upgrades_the_websocket_and_routes_a_browser_to_one_replica(http) -> None:
    (upstream,) = find(http, "upstream")
    (hash_,) = find(upstream[2], "hash")
    assert hash_[1][1:] == ["consistent"]
    key = hash_[1][0]  # a map from the route cookie, filled for a first visit
    (route,) = [m for m in find(http, "map") if m[1][1] == key]
    assert route[1][0] == "$cookie_tinyformers_route"
    (server,) = find(http, "server")
    assert any(d[1] == ["Set-Cookie", "$tinyformers_route_cookie", "always"] for d in server[2])
    (stream,) = find(server[2], "location", "/_stcore/stream")
    # a location with no proxy_set_header of its own inherits the server's
    sent = headers(stream[2]) or headers(server[2])
    assert sent["upgrade"] == "$http_upgrade"
    (upgrade,) = [m for m in find(http, "map") if m[1] == ["$http_upgrade", sent["connection"]]]
    assert ["default", ["upgrade"], None] in upgrade[2]
    assert sent["host"] == "$http_host"  # Streamlit checks the websocket's origin against it
    assert find(stream[2], "proxy_pass")[0][1] == ["http://tinyformers"]
    assert find(server[2], "proxy_http_version")[0][1] == ["1.1"]
    read_timeout = find(stream[2], "proxy_read_timeout")[0][1][0]
    assert read_timeout.endswith(("d", "h")), "an idle websocket would be cut after a minute"


def test_nginx_compresses_streamlits_scripts(http) -> None:
    assert find(http, "gzip")[0][1] == ["on"]
    assert {"application/javascript", "text/javascript", "text/css"} <= set(
        find(http, "gzip_types")[0][1]
    )


def test_the_local_config_changes_only_the_marked_lines() -> None:
    template = NGINX_CONF.read_text(encoding="utf-8")
    local = nginx_config(template, [9001, 9002], "127.0.0.1:8080")
    (http,) = find(parse_nginx(local), "http")
    (upstream,) = find(http[2], "upstream")
    assert [d[1] for d in find(upstream[2], "server")] == [["127.0.0.1:9001"], ["127.0.0.1:9002"]]
    (server,) = find(http[2], "server")
    assert find(server[2], "listen")[0][1] == ["127.0.0.1:8080"]
    changed = set(local.splitlines()) ^ set(template.splitlines())
    assert all(
        REPLICAS_MARK in c or LISTEN_MARK in c or "9001" in c or "9002" in c or "8080" in c
        for c in changed
    )
    with pytest.raises(ServeError, match="exactly one"):
        nginx_config(template.replace(LISTEN_MARK, ""), [9001], "8080")


# --- tinyformers serve --------------------------------------------------------------------


def need_nginx() -> None:
    if not Path(NGINX).is_file():
        message = f"serve needs Debian's nginx at {NGINX} (apt-get install nginx)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it; a skip there would hide the test
        pytest.skip(message)


def test_nginx_accepts_the_local_config(tmp_path) -> None:
    need_nginx()
    config = nginx_config(NGINX_CONF.read_text(encoding="utf-8"), [9001, 9002], "127.0.0.1:8080")
    (tmp_path / "nginx.conf").write_text(config, encoding="utf-8")
    checked = subprocess.run(
        [NGINX, "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
def test_serve_puts_two_replicas_behind_nginx_and_stops_them(tmp_path) -> None:
    need_nginx()
    from deploy.streamlit_client import Session, run_sync

    port = free_port()
    command = [sys.executable, "-m", "tinyformers.cli", "serve", "--replicas", "2"]
    command += ["--port", str(port), "--address", "127.0.0.1"]
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()
    try:
        # the layout says when it serves (a safety limit only: replicas start slowly on a busy
        # machine)
        ready = lines.get(timeout=900)
        assert "is served at" in ready, ready + (tmp_path / "serve.log").read_text()
        replica_ports = [int(p) for p in re.findall(r"\d+", ready.split("local ports")[1])]
        assert len(replica_ports) == 2
        # before nginx let anyone in, every page ran once on each replica without a problem
        warmed = re.findall(r"(\d+) of (\d+) pages warm", (tmp_path / "serve.log").read_text())
        assert len(warmed) == 2 and all(a == b and int(a) > 10 for a, b in warmed), warmed
        url = f"http://127.0.0.1:{port}"

        with urllib.request.urlopen(url + "/") as response:
            cookie = response.headers["Set-Cookie"]
            page = response.read().decode()
        assert cookie.startswith("tinyformers_route=")
        script = re.search(r'src="\./(static/js/[^"]+\.js)"', page).group(1)
        request = urllib.request.Request(f"{url}/{script}", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request) as response:
            assert response.headers["Content-Encoding"] == "gzip"

        async def visit() -> list:
            async with Session(url) as session:
                return [await session.open_page(p) for p in ("", "attention")]

        runs = run_sync(visit())
        assert [(r.status, r.exceptions) for r in runs] == [("FINISHED_SUCCESSFULLY", [])] * 2
        assert all(r.elements > 5 for r in runs)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=120)
        log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()
    assert "stopped nginx and every replica" in lines.get(timeout=10)
    assert all(refused(p) for p in [port, *replica_ports])


def test_the_serve_command_never_loads_torch() -> None:
    """``tinyformers serve`` stays up as long as its replicas: torch would hold about 0.3 GB."""
    code = (
        "import sys\n"
        "from tinyformers import cli, serve\n"
        "try:\n"
        "    cli.main(['serve', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('torch loaded' if 'torch' in sys.modules else 'no torch')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "tinyformers serve" in done.stdout
    assert done.stdout.strip().endswith("no torch")


def test_the_app_skips_work_a_page_run_does_not_need() -> None:
    """With the models in memory, Streamlit's full collection after every run took a third of a
    page run's CPU time, and its source watcher a quarter of a second at each new session's
    first run (``bench/load.py``, ``bench/pages.py``). ``streamlit run app`` and every replica
    read this file (they start in ROOT)."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
    assert config["server"]["fileWatcherType"] == "none"
