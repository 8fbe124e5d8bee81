"""A class arriving at once: many sessions on one server open lessons at the same time, every
lesson by several sessions.

Shipped models are shared by all sessions, so a lesson that changed a shared model (a hook, an
attribute, its training flag) would leak into another session's page; under this load such a
leak shows up as an exception on some page.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from bench.app_server import serving
from deploy.streamlit_client import Session, run_sync
from tinyformers.lessons import load_lessons

pytestmark = pytest.mark.slow

SESSIONS = 20
PAGES_EACH = 5  # 20 × 5 runs: every lesson several times, several lessons at every moment


@pytest.fixture(scope="module")
def server_url():
    with serving() as url:
        yield url


async def visit(url: str, pages: list[str]) -> list:
    async with Session(url) as session:
        return [await session.open_page(page) for page in pages]


async def a_class_arrives(url: str, slugs: list[str]) -> list:
    orders = []
    for i in range(SESSIONS):
        order = [slugs[(i * PAGES_EACH + j) % len(slugs)] for j in range(PAGES_EACH)]
        random.Random(i).shuffle(order)
        orders.append(order)
    results = await asyncio.gather(*(visit(url, order) for order in orders))
    return [run for runs in results for run in runs]


def test_twenty_sessions_open_lessons_at_once(server_url) -> None:
    slugs = [lesson.slug for lesson in load_lessons()]
    runs = run_sync(a_class_arrives(server_url, slugs))
    assert len(runs) == SESSIONS * PAGES_EACH
    assert {r.page for r in runs} == set(slugs), "every lesson is opened by some session"
    failed = [f"/{r.page}: {r.status} {r.exceptions[:2]}" for r in runs if not r.ok]
    assert not failed, f"{len(failed)} of {len(runs)} page runs failed: {failed[:5]}"
    assert all(r.elements > 5 for r in runs), "a page run drew (almost) nothing"


def test_the_client_sees_an_exception_on_a_page(server_url) -> None:
    """The check above can fail: a page that does not exist is reported, not passed over."""
    run = run_sync(visit(server_url, ["no-such-lesson"]))[0]
    assert not run.ok
