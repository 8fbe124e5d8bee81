"""A client that speaks Streamlit's own websocket protocol, without a browser.

A browser tab is one websocket to ``/_stcore/stream``. Asking for a page is a ``rerun_script``
back-message naming the page; the server answers with deltas (the page's elements) and ends the
run with a ``script_finished`` message. This client does the same, so a benchmark or a test can
open many sessions on one server and count what each page run produced, exceptions included.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

FINISHED = ForwardMsg.ScriptFinishedStatus.Name(ForwardMsg.FINISHED_SUCCESSFULLY)


@dataclass
class PageRun:
    """What one page run produced."""

    page: str
    seconds: float
    status: str
    exceptions: list[str] = field(default_factory=list)
    elements: int = 0

    @property
    def ok(self) -> bool:
        return self.status == FINISHED and not self.exceptions


class Session:
    """One browser tab's worth of Streamlit session over a websocket."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        scheme = "wss" if parts.scheme == "https" else "ws"
        self.stream_url = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/_stcore/stream"
        self.socket = None

    async def __aenter__(self) -> Session:
        self.socket = await websockets.connect(
            self.stream_url,
            subprotocols=["streamlit"],
            origin=self.origin,
            max_size=None,
            open_timeout=120,
            ping_interval=None,
        )
        return self

    async def __aexit__(self, *exc) -> None:
        await self.socket.close()

    async def open_page(self, page: str, query: str = "", timeout: float = 600) -> PageRun:
        """Run ``page`` (its URL path, "" for the start page) and wait for the run to end."""
        message = BackMsg()
        message.rerun_script.query_string = query
        message.rerun_script.page_name = page
        started = time.perf_counter()
        await self.socket.send(message.SerializeToString())
        run = PageRun(page=page, seconds=0.0, status="no answer")
        async with asyncio.timeout(timeout):
            while True:
                forward = ForwardMsg()
                forward.ParseFromString(await self.socket.recv())
                kind = forward.WhichOneof("type")
                if kind == "delta":
                    self._count(forward, run)
                elif kind == "script_finished":
                    status = ForwardMsg.ScriptFinishedStatus.Name(forward.script_finished)
                    if status != "FINISHED_EARLY_FOR_RERUN":
                        run.status = status
                        break
                elif kind == "page_not_found":
                    run.exceptions.append(f"page not found: {page!r}")
        run.seconds = time.perf_counter() - started
        return run

    @staticmethod
    def _count(forward: ForwardMsg, run: PageRun) -> None:
        delta = forward.delta
        if delta.WhichOneof("type") != "new_element":
            return
        run.elements += 1
        element = delta.new_element
        if element.WhichOneof("type") == "exception":
            run.exceptions.append(f"{element.exception.type}: {element.exception.message}")
