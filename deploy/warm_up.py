"""Open every page of running replicas once, so that the first students to arrive find their
caches warm: the shipped models loaded and each lesson's default figures computed.

    python deploy/warm_up.py http://127.0.0.1:8501 [http://127.0.0.1:8502 ...]

``tinyformers serve`` runs it on every replica before nginx lets a browser in. One session per
replica opens the course map, the lesson plans and every lesson, the replicas side by side.
Prints one line per replica; exits with 1 if a page did not finish or showed an exception.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.streamlit_client import PageRun, Session  # noqa: E402
from tinyformers.lessons import load_lessons  # noqa: E402

PAGE_TIMEOUT = 300  # seconds: a limit for a page's first run on a busy machine, not a target


def pages() -> list[str]:
    """The course map, the lesson plans and every lesson, by URL path."""
    return ["", "plan", *(lesson.slug for lesson in load_lessons())]


async def warm(url: str) -> list[PageRun]:
    async with Session(url) as session:
        return [await session.open_page(page, timeout=PAGE_TIMEOUT) for page in pages()]


async def warm_all(urls: list[str]) -> list[list[PageRun]]:
    return await asyncio.gather(*(warm(url) for url in urls))


def main(urls: list[str]) -> int:
    if not urls:
        print(__doc__, file=sys.stderr)
        return 2
    started = time.perf_counter()
    results = asyncio.run(warm_all(urls))
    failed = False
    for url, runs in zip(urls, results, strict=True):
        bad = [f"/{run.page}: {run.status} {run.exceptions[:1]}" for run in runs if not run.ok]
        failed = failed or bool(bad)
        print(f"{url}: {len(runs) - len(bad)} of {len(runs)} pages warm", *bad, sep="\n  ")
    print(f"warmed in {time.perf_counter() - started:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
