"""Server-side load: a class of sessions on one server, spoken to in Streamlit's own protocol.

Each session is a browser tab without a browser (``deploy/streamlit_client.py``): it asks for a
lesson page (a full script run), waits for the run to finish, pauses (uniformly 0 to twice
``--think`` seconds) and asks for another lesson, until ``--duration`` is over. ``--trainings``
more sessions open ``/train``, press "Start training" (the click a browser sends: a rerun whose
widget states trigger the button) and then watch their run the way a browser does, asking for a
rerun of the live view whenever its timer fires; a training whose run ends before the load does
presses Start again, so ``--trainings`` runs train throughout.

    python bench/load.py --url http://127.0.0.1:8080 --sessions 30 --think 5 --trainings 2
    python bench/load.py --serve 2 --sessions 30 --all-at-once --duration 0   # a cold server

``--serve N`` starts ``tinyformers serve --replicas N`` for the run (a new server, which has
opened each page once on every replica before it lets anyone in; ``--no-warm-up`` skips that) and
stops it afterwards; otherwise ``--url`` names a running server (one replica or nginx) and
``--server-pid`` the root of its processes (by default the process listening on the URL's port,
or the ``tinyformers serve`` it belongs to).

Prints page-run p50 / p95 / max, throughput (page runs per second), errors (runs with an
exception element, runs that did not finish, sessions that failed), the server's CPU (the sum
over its process tree, in busy cores) and peak RSS and PSS (sums over the tree), and the machine's
load, which other work may share.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.streamlit_client import PageRun, Session  # noqa: E402
from tinyformers.lessons import load_lessons  # noqa: E402


@dataclass
class Results:
    runs: list[PageRun] = field(default_factory=list)  # the browsing sessions' page runs
    live_runs: list[PageRun] = field(default_factory=list)  # the training sessions' live views
    failures: list[str] = field(default_factory=list)  # sessions that broke off
    trainings_started: int = 0
    first_runs: list[PageRun] = field(default_factory=list)  # each session's first page


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# --- the server's processes ---------------------------------------------------------------


def listening_pid(port: int) -> int | None:
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
            return connection.pid
    return None


def server_root(url: str) -> psutil.Process:
    """The process listening on the URL's port, or the ``tinyformers serve`` above it."""
    port = urlsplit(url).port or 80
    pid = listening_pid(port)
    if pid is None:
        raise SystemExit(f"no process listens on port {port}; pass --server-pid")
    process = psutil.Process(pid)
    for parent in process.parents():
        if "serve" in parent.cmdline() and any("tinyformers" in a for a in parent.cmdline()):
            return parent
    return process


class Meter:
    """Samples a process tree once a second: CPU seconds used, and the sums of resident memory
    (RSS, which counts a page shared by several processes once in each) and of proportional
    memory (PSS, which splits a shared page between them: what the tree holds in all)."""

    def __init__(self, root: psutil.Process, interval: float = 1.0) -> None:
        self.root, self.interval = root, interval
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._seen: dict[int, float] = {}  # pid -> CPU seconds at its last sample

    def _tree(self) -> list[psutil.Process]:
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _sample(self) -> None:
        rss = pss = 0
        tree = self._tree()
        for process in tree:
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    # a process that has exited keeps its last sample (a training worker); its
                    # parent's times for waited-for children would count it twice
                    used = times.user + times.system
                    rss += process.memory_info().rss
                    pss += getattr(process.memory_full_info(), "pss", 0)  # Linux only
            except psutil.Error:
                continue
            self._seen[process.pid] = used
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_processes = max(self.peak_processes, len(tree))

    def cpu_seconds(self) -> float:
        return sum(self._seen.values())

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> Meter:
        self._sample()
        self.start_cpu, self.start_wall = self.cpu_seconds(), time.monotonic()
        self.machine_start = psutil.cpu_times()
        self.client_start = sum(psutil.Process().cpu_times()[:2])
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.wall = time.monotonic() - self.start_wall
        self.busy_cores = (self.cpu_seconds() - self.start_cpu) / self.wall
        self.client_busy_cores = (
            sum(psutil.Process().cpu_times()[:2]) - self.client_start
        ) / self.wall
        end = psutil.cpu_times()
        idle = (end.idle + getattr(end, "iowait", 0)) - (
            self.machine_start.idle + getattr(self.machine_start, "iowait", 0)
        )
        self.machine_busy_cores = psutil.cpu_count() - idle / self.wall


# --- sessions -----------------------------------------------------------------------------


async def student(index: int, session: Session, args, slugs: list[str], end: float, results):
    rng = random.Random(index)
    try:
        if not args.all_at_once:  # arrivals spread over one pause
            await asyncio.sleep(rng.uniform(0, 2 * args.think))
        first = True
        while True:
            run = await session.open_page(rng.choice(slugs), timeout=args.timeout)
            results.runs.append(run)
            if first:
                results.first_runs.append(run)
                first = False
            if time.monotonic() >= end:
                return
            await asyncio.sleep(rng.uniform(0, 2 * args.think))
    except Exception as err:  # a session that breaks off is an error, not a crash of the bench
        results.failures.append(f"session {index}: {type(err).__name__}: {err}")


async def trainer(index: int, session: Session, args, end: float, results: Results) -> None:
    """Open /train and press "Start training", then redraw the live view on its timer; when a
    run ends before the load does, press Start again, so the trainings run throughout."""
    try:
        await session.open_page("train", timeout=args.timeout)
        while time.monotonic() < end:
            clicked = await session.click("train-start", timeout=args.timeout)
            if not (clicked.ok and session.auto_reruns):
                results.failures.append(f"training {index} did not start: {clicked.exceptions}")
                return
            results.trainings_started += 1
            if args.no_live_view:  # a tab left in the background: the run trains, nobody watches
                await asyncio.sleep(max(0.0, end - time.monotonic()))
                return
            await watch(session, args, end, results)
    except Exception as err:
        results.failures.append(f"training {index}: {type(err).__name__}: {err}")


async def watch(session: Session, args, end: float, results: Results) -> None:
    """Redraw a training's live views, each on its own timer as a browser does, until its run
    ends (the views stop asking to be redrawn) or the load does."""
    due: dict[str, float] = {}  # fragment id -> when its timer fires next
    while session.auto_reruns and time.monotonic() < end:
        due = {f: due.get(f, time.monotonic() + every) for f, every in session.auto_reruns.items()}
        fragment = min(due, key=due.get)
        await asyncio.sleep(max(0.0, due[fragment] - time.monotonic()))
        # a live view whose run has ended stops asking to be redrawn, and a rerun of it may
        # never finish: wait for it no longer than the load lasts (plus a page run's grace)
        left = max(1.0, end - time.monotonic()) + 30
        try:
            run = await asyncio.wait_for(
                session.rerun_fragment(fragment, timeout=args.timeout), left
            )
        except TimeoutError:
            return
        results.live_runs.append(run)
        due[fragment] = time.monotonic() + session.auto_reruns.get(fragment, 0.0)


async def load(args, slugs: list[str]) -> tuple[Results, float]:
    """Connect every session, then start them all at one moment; returns the results and the
    seconds from that moment to the end of the last page run."""
    results = Results()
    count = args.trainings + args.sessions
    sessions = [Session(args.url) for _ in range(count)]
    opened = await asyncio.gather(*(s.__aenter__() for s in sessions), return_exceptions=True)
    failed = [f"connect: {err!r}" for err in opened if isinstance(err, BaseException)]
    if failed:
        raise SystemExit(f"{len(failed)} of {count} sessions could not connect: {failed[0]}")
    try:
        began = time.monotonic()
        end = began + args.duration
        await asyncio.gather(
            *(trainer(i, s, args, end, results) for i, s in enumerate(sessions[: args.trainings])),
            *(
                student(i, s, args, slugs, end, results)
                for i, s in enumerate(sessions[args.trainings :])
            ),
        )
        return results, time.monotonic() - began
    finally:
        await asyncio.gather(*(s.__aexit__(None, None, None) for s in sessions))


# --- a server of our own ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(replicas: int, warm_up: bool = True) -> tuple[subprocess.Popen, str]:
    """``tinyformers serve --replicas N`` on a free port; returns once it serves (after its
    warm-up, unless ``warm_up`` is False)."""
    port = free_port()
    command = [sys.executable, "-m", "tinyformers.cli", "serve", "--replicas", str(replicas)]
    command += ["--port", str(port), "--address", "127.0.0.1"]
    command += [] if warm_up else ["--no-warm-up"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if "is served at" not in line:
        process.kill()
        raise SystemExit(f"tinyformers serve did not start: {line!r}")
    return process, f"http://127.0.0.1:{port}"


def stop_serve(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=120)


# --- report -------------------------------------------------------------------------------


def summary(results: Results, seconds: float, meter: Meter, args) -> dict:
    times = [r.seconds for r in results.runs]
    first = [r.seconds for r in results.first_runs]
    live = [r.seconds for r in results.live_runs]
    bad = [r for r in results.runs + results.live_runs if not r.ok]
    return {
        "url": args.url,
        "sessions": args.sessions,
        "trainings": args.trainings,
        "trainings_started": results.trainings_started,
        "think_s": args.think,
        "all_at_once": args.all_at_once,
        "seconds": round(seconds, 1),
        "page_runs": len(times),
        "p50_s": round(percentile(times, 0.5), 3),
        "p95_s": round(percentile(times, 0.95), 3),
        "max_s": round(max(times, default=float("nan")), 3),
        "first_page_p50_s": round(percentile(first, 0.5), 3),
        "first_page_p95_s": round(percentile(first, 0.95), 3),
        "throughput_runs_per_s": round(len(times) / seconds, 2) if seconds else None,
        "live_view_runs": len(live),
        "live_view_p50_s": round(percentile(live, 0.5), 3),
        "errors": len(bad) + len(results.failures),
        "error_examples": [f"/{r.page}: {r.status} {r.exceptions[:1]}" for r in bad[:3]]
        + results.failures[:3],
        "server_busy_cores": round(meter.busy_cores, 2),
        "server_peak_rss_mb": round(meter.peak_rss / 2**20),
        "server_peak_pss_mb": round(meter.peak_pss / 2**20),
        "server_peak_processes": meter.peak_processes,
        "client_busy_cores": round(meter.client_busy_cores, 2),  # this benchmark's own share
        "machine_busy_cores": round(meter.machine_busy_cores, 2),
        "machine_cores": psutil.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="a running server: one replica or nginx")
    target.add_argument(
        "--serve", type=int, metavar="N", help="start `tinyformers serve` with N replicas"
    )
    parser.add_argument(
        "--no-warm-up",
        action="store_true",
        help="with --serve: let sessions in before every page has run once on each replica",
    )
    parser.add_argument("--server-pid", type=int, help="root of the server's processes")
    parser.add_argument("--sessions", type=int, default=30, help="students browsing lessons")
    parser.add_argument("--trainings", type=int, default=0, help="more sessions, each training")
    parser.add_argument(
        "--no-live-view", action="store_true", help="trainings do not redraw their live view"
    )
    parser.add_argument("--think", type=float, default=5.0, help="mean pause between pages (s)")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument("--all-at-once", action="store_true", help="no spread in arrivals")
    parser.add_argument("--pages", help="comma-separated slugs (default: every lesson + map)")
    parser.add_argument("--timeout", type=float, default=600.0, help="limit of one page run (s)")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    args = parser.parse_args(argv)

    slugs = args.pages.split(",") if args.pages else ["", *(x.slug for x in load_lessons())]
    served = None
    if args.serve:
        served, args.url = start_serve(args.serve, warm_up=not args.no_warm_up)
    try:
        if args.server_pid or served:
            root = psutil.Process(args.server_pid or served.pid)
        else:
            root = server_root(args.url)
        with Meter(root) as meter:
            results, seconds = asyncio.run(load(args, slugs))
    finally:
        if served is not None:
            stop_serve(served)
    report = summary(results, seconds, meter, args)
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"{args.sessions} sessions + {args.trainings} trainings on {args.url}, think {args.think:g} s, {seconds:.0f} s"
    )
    for key, value in report.items():
        print(f"  {key:28} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
