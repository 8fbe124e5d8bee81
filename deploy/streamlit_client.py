"""A client that speaks Streamlit's own websocket protocol, without a browser.

A browser tab is one websocket to ``/_stcore/stream``. Asking for a page is a ``rerun_script``
back-message naming the page; the server answers with deltas (the page's elements) and ends the
run with a ``script_finished`` message. This client does the same, so a benchmark or a test can
open many sessions on one server and count what each page run produced, exceptions included.

A click is what the browser sends for it: a rerun whose widget states hold the button's id with
``trigger_value`` set (``Session.click``). The ids come from the page's own elements. A fragment
that redraws itself every few seconds (``st.fragment(run_every=…)``) is announced by an
``auto_rerun`` message; the browser then asks for a rerun of that fragment on a timer, and
``Session.rerun_fragment`` does the same.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

FINISHED = ForwardMsg.ScriptFinishedStatus.Name(ForwardMsg.FINISHED_SUCCESSFULLY)
FRAGMENT_FINISHED = ForwardMsg.ScriptFinishedStatus.Name(
    ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
)
ID_PREFIX = "$$ID-"  # a widget's id: $$ID-<hash>-<its key>


@dataclass
class PageRun:
    """What one page run produced."""

    page: str
    seconds: float
    status: str
    exceptions: list[str] = field(default_factory=list)
    elements: int = 0
    widgets: dict[str, str] = field(default_factory=dict)  # a keyed widget's key -> its id

    @property
    def ok(self) -> bool:
        return self.status in (FINISHED, FRAGMENT_FINISHED) and not self.exceptions


class Session:
    """One browser tab's worth of Streamlit session over a websocket."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        scheme = "wss" if parts.scheme == "https" else "ws"
        self.stream_url = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/_stcore/stream"
        self.socket = None
        self.page = ""
        self.page_hash = ""  # the page script's hash, which the server gives with every run
        self.widgets: dict[str, str] = {}  # the keyed widgets of this session's last run
        self.auto_reruns: dict[str, float] = {}  # fragment id -> seconds between its reruns

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

    async def open_page(
        self,
        page: str,
        query: str = "",
        timeout: float = 600,
        widget_states: list[WidgetState] = (),
        fragment_id: str = "",
    ) -> PageRun:
        """Run ``page`` (its URL path, "" for the start page) and wait for the run to end."""
        message = BackMsg()
        message.rerun_script.query_string = query
        message.rerun_script.page_name = page
        if page == self.page and self.page_hash:  # the page on screen, named as a browser does
            message.rerun_script.page_script_hash = self.page_hash
        message.rerun_script.widget_states.widgets.extend(widget_states)
        if fragment_id:
            message.rerun_script.fragment_id = fragment_id
            message.rerun_script.is_auto_rerun = True
        else:
            self.auto_reruns.clear()
        self.page = page
        started = time.perf_counter()
        await self.socket.send(message.SerializeToString())
        run = PageRun(page=page, seconds=0.0, status="no answer")
        # live views (fragments on a timer) started and stopped by the run that answers; a
        # fragment's run may turn into a whole-page run, which registers the page's views anew
        registered: dict[str, float] = {}
        stopped: set[str] = set()
        async with asyncio.timeout(timeout):
            while True:
                forward = ForwardMsg()
                forward.ParseFromString(await self.socket.recv())
                kind = forward.WhichOneof("type")
                if kind == "delta":
                    self._count(forward, run)
                elif kind == "new_session":  # a run starts: the one before ended for a rerun
                    registered, stopped = {}, set()
                elif kind == "navigation":  # which page this run shows
                    self.page_hash = forward.navigation.page_script_hash
                elif kind == "script_finished":
                    status = ForwardMsg.ScriptFinishedStatus.Name(forward.script_finished)
                    if status != "FINISHED_EARLY_FOR_RERUN":
                        run.status = status
                        break
                elif kind == "page_not_found":
                    run.exceptions.append(f"page not found: {page!r}")
                elif kind == "auto_rerun":
                    registered[forward.auto_rerun.fragment_id] = forward.auto_rerun.interval
                elif kind == "stop_auto_rerun":
                    stopped.add(forward.stop_auto_rerun.fragment_id)
                    registered.pop(forward.stop_auto_rerun.fragment_id, None)
        run.seconds = time.perf_counter() - started
        if run.status == FINISHED:  # the whole page ran: its widgets and live views replace ours
            self.widgets, self.auto_reruns = dict(run.widgets), registered
        else:
            self.widgets.update(run.widgets)
            self.auto_reruns = {
                k: v for k, v in self.auto_reruns.items() if k not in stopped
            } | registered
        return run

    async def click(self, key: str, timeout: float = 600) -> PageRun:
        """Press the button with ``key`` on the current page, as a browser does."""
        if key not in self.widgets:
            raise KeyError(f"no widget with key {key!r} on /{self.page}: {sorted(self.widgets)}")
        press = WidgetState(id=self.widgets[key], trigger_value=True)
        return await self.open_page(self.page, timeout=timeout, widget_states=[press])

    async def rerun_fragment(self, fragment_id: str, timeout: float = 600) -> PageRun:
        """The rerun a browser asks for when a fragment's ``run_every`` timer fires."""
        return await self.open_page(self.page, timeout=timeout, fragment_id=fragment_id)

    @staticmethod
    def _count(forward: ForwardMsg, run: PageRun) -> None:
        delta = forward.delta
        if delta.WhichOneof("type") != "new_element":
            return
        run.elements += 1
        element = delta.new_element
        kind = element.WhichOneof("type")
        if kind == "exception":
            run.exceptions.append(f"{element.exception.type}: {element.exception.message}")
            return
        widget_id = getattr(getattr(element, kind), "id", "") if kind else ""
        if isinstance(widget_id, str) and widget_id.startswith(ID_PREFIX):
            key = widget_id[len(ID_PREFIX) :].split("-", 1)[-1]
            if key and key != "None":
                run.widgets[key] = widget_id


def run_sync(coroutine):
    """Run ``coroutine`` to its end from synchronous code, in a thread of its own, so it works
    even where an event loop is already running (a Playwright session in the same thread)."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, name="streamlit-client")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
