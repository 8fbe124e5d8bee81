"""Hostile input in Chromium: on every lesson, every text box and text area takes markup and
script (on two lessons with every kind of field, also a long text, and every number input and
slider its extremes), and the uploader files that are not text. Afterwards the page shows no
traceback, nothing a value carried ran (no script, no ``onerror``, no ``javascript:`` link, in
the page or in any of its frames, the attention views included), the script finished, and the
page says something or shows a result.

The full list of values goes through every field headless (tests/test_hostile_inputs.py); this
test checks, with one server and each lesson opened once, what only a browser can show.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from tests.e2e.conftest import STATE_TIMEOUT
from tests.e2e.test_pages import LESSON_SLUGS
from tests.test_hostile_inputs import UPLOADS

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MARKER = "pwned-marker"
RUN = f"window.__pwned=1;document.body.append(Object.assign(document.createElement('b'),{{id:'{MARKER}'}}))"
PAYLOAD = (
    f'</script><script>{RUN}</script><img src=x onerror="{RUN}"><svg onload="{RUN}">'
    f"[click](javascript:{RUN}) **bold** \u202eevil\u202c 👩‍👩‍👧‍👦 Zoe\x00sees [MASK] <|endoftext|>"
)
LONG = "Zoe sees the dog . " * 2_700  # 51,300 characters
OWN_TEXT = "Your own text"
ANY_FIELD = (
    "[data-testid='stMain'] :is(input[data-testid=stTextInputField], textarea,"
    " input[data-testid=stNumberInputField], input[type=range])"
)
CONFIG = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"
MAX_UPLOAD_BYTES = tomllib.loads(CONFIG.read_text())["server"]["maxUploadSize"] * 1_000_000
UPLOADER = "[data-testid='stFileUploader'] input[type=file]"
# the pages with uploaders, and the choice that shows them
UPLOAD_CHOICE = {
    "tokenization": "tok-source",
    "masks": "mk-corpus",
    "transformer-block": "tb-source",
    "train": "train-corpus",
}

# A prediction's answer box is a new box for each input, so it is given hostile values headless
# (tests/test_hostile_inputs.py); the class-room fields are driven in tests/e2e/test_class_room.py
# and tests/app/test_class_view.py.
NOT_LESSON_FIELDS = ("guess-", "room-", "answers-", "instructor-")
FIELDS = """() => [...document.querySelectorAll('[class*="st-key-"]')].flatMap(el => {
  const key = [...el.classList].find(c => c.startsWith('st-key-')).slice(7);
  const kinds = [['text', 'input[data-testid=stTextInputField]'], ['area', 'textarea'],
                 ['number', 'input[data-testid=stNumberInputField]'], ['slider', 'input[type=range]']];
  for (const [kind, selector] of kinds) {
    const input = el.querySelector(selector);
    if (input && !input.disabled && !el.querySelector('[class*="st-key-"]')) return [[kind, key]];
  }
  return [];
})"""
RAN = """() => {
  const found = [];
  const look = (win, where) => {
    try {
      if (win.__pwned) found.push(where + ': window.__pwned');
      const doc = win.document;
      if (doc.getElementById('pwned-marker')) found.push(where + ': the marker element');
      for (const a of doc.querySelectorAll('a[href]'))
        if (/^\\s*javascript:/i.test(a.getAttribute('href'))) found.push(where + ': ' + a.outerHTML);
      for (let i = 0; i < win.frames.length; i++) look(win.frames[i], where + ' > frame ' + i);
    } catch (e) { found.push(where + ': unreadable frame ' + e); }
  };
  look(window, 'page');
  return found;
}"""


def run_finished(payload: bytes | str) -> bool:
    """Whether a message from the server says a run of the page's script ended."""
    if isinstance(payload, str):
        return False
    message = ForwardMsg()
    message.ParseFromString(payload)
    return (
        message.WhichOneof("type") == "script_finished"
        and message.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY
    )


class Runs:
    """Counts the page's finished script runs, read from the server's messages, so that a wait
    for the run an action caused cannot take the state before that run started for its end."""

    def __init__(self, page) -> None:
        self.finished = 0
        self.socket = None
        page.on("websocket", self._watch)

    def _watch(self, socket) -> None:
        self.socket, self.finished = socket, 0  # a new page: its own session
        socket.on("framereceived", lambda payload: self._count(socket, payload))

    def _count(self, socket, payload) -> None:
        if socket is self.socket:  # a page left behind may still hear from its session
            self.finished += run_finished(payload)


def runs(page) -> int:
    return page.runs.finished


def settle(page, before: int) -> None:
    """Wait until a run that started after ``before`` runs has finished (the page is not
    frozen: its script ends) and the page has drawn it."""
    if runs(page) <= before:
        page.runs.socket.wait_for_event(
            "framereceived", predicate=run_finished, timeout=STATE_TIMEOUT
        )
    page.wait_for_function(
        "() => document.querySelector(\"[data-testid='stApp']\")"
        "?.getAttribute('data-test-script-state') === 'notRunning'",
        timeout=STATE_TIMEOUT,
    )


def assert_safe(page, what: str) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, f"{what}: a traceback"
    assert page.evaluate(RAN) == [], f"{what}: {page.evaluate(RAN)}"
    assert page.dialogs == [], f"{what}: a dialog fired: {page.dialogs}"
    assert page.outside_requests == [], f"{what}: it tried to reach {page.outside_requests[:3]}"


def says_or_shows(page) -> bool:
    main = page.locator("[data-testid='stMain']")
    return main.locator("[data-testid='stAlert'], .js-plotly-plot, iframe").count() > 0


def field(page, key: str, kind: str):
    selector = {"text": "input", "area": "textarea", "number": "input", "slider": "input"}
    return page.locator(f".st-key-{key} {selector[kind]}").first


def type_text(page, key: str, kind: str, text: str) -> None:
    before = runs(page)
    box = field(page, key, kind)
    box.fill(text)
    box.press("Control+Enter" if kind == "area" else "Enter")
    settle(page, before)


def written(number: float) -> str:
    """A number as a student types it (no exponent)."""
    return str(int(number)) if number.is_integer() else repr(number)


def type_numbers(page, key: str) -> None:
    """Numbers beyond the field's limits are not taken; its largest is."""
    box = field(page, key, "number")
    low, high = float(box.get_attribute("min")), float(box.get_attribute("max"))
    target = low if float(box.input_value()) == high else high
    for beyond in (low - 1_000_000, high + 10**12):
        box.fill(written(beyond))
        box.press("Enter")
    before = runs(page)
    box.fill(written(target))
    box.press("Enter")
    settle(page, before)
    assert float(field(page, key, "number").input_value()) == target


def slide_to_the_end(page, key: str) -> None:
    handle = field(page, key, "slider")
    at_end = handle.get_attribute("value") == handle.get_attribute("max")
    before = runs(page)
    handle.focus()
    handle.press("Home" if at_end else "End")
    settle(page, before)


def open_lesson(page, url: str, slug: str) -> None:
    """Open a lesson in a new session and wait until its script has run to the end (the
    sidebar's link panel comes after the lesson)."""
    with page.expect_websocket():
        page.goto(f"{url}/{slug}")
    page.locator("[data-testid='stSidebar']").get_by_text("Link to this view").wait_for()
    page.locator(ANY_FIELD).first.wait_for(state="attached")
    settle(page, 0)


def lesson_fields(page) -> list[list[str]]:
    """The lesson's enabled fields, once there are any (Streamlit enables a page's widgets only
    when its session is connected)."""
    shown = f"() => ({FIELDS})().some(([kind, key]) => !{list(NOT_LESSON_FIELDS)!r}.some(p => key.startsWith(p)))"
    page.wait_for_function(shown, timeout=STATE_TIMEOUT)
    return [f for f in page.evaluate(FIELDS) if not f[1].startswith(NOT_LESSON_FIELDS)]


@pytest.fixture(scope="module")
def page(browser, server_url):
    from tests.e2e.conftest import new_page

    page = new_page(browser, server_url)
    page.runs = Runs(page)
    yield page
    page.context.close()


# Markup can only run where a page draws text, so every lesson's text fields take the payload.
# The long text, the numbers beyond their limits and the sliders' ends meet the same widgets on
# every page (the headless matrix gives every field all of them); here they go through the
# two lessons that have every kind of field between them: text boxes, text areas, numbers, sliders.
EVERY_FIELD = ("tokenization", "train")


@pytest.mark.parametrize("slug", LESSON_SLUGS)
def test_every_field_of_a_lesson_takes_hostile_values(page, server_url, slug: str) -> None:
    open_lesson(page, server_url, slug)
    fields = lesson_fields(page)
    assert fields, f"{slug} shows no field"
    if slug not in EVERY_FIELD:
        fields = [f for f in fields if f[0] in ("text", "area")] or fields[-1:]
    texts = (PAYLOAD, LONG) if slug in EVERY_FIELD else (PAYLOAD,)
    for kind, key in reversed(fields):  # from the bottom: a field only changes what follows it
        what = f"{slug} {key}"
        if kind in ("text", "area"):
            for text in texts:
                type_text(page, key, kind, text)
                assert_safe(page, what)
                assert says_or_shows(page), f"{what}: nothing is said or shown"
        elif kind == "number":
            type_numbers(page, key)
        else:
            slide_to_the_end(page, key)
        assert_safe(page, what)


# Every lesson's uploader is the same shared widget, and the headless matrix sends these files
# to each of them; in the browser, one lesson shows what the browser itself adds (its size cap).
@pytest.mark.parametrize("slug", ["tokenization"])
def test_the_uploader_refuses_files_that_are_not_text(page, server_url, slug, tmp_path) -> None:
    open_lesson(page, server_url, slug)
    before = runs(page)
    page.locator(f".st-key-{UPLOAD_CHOICE[slug]}").get_by_text(OWN_TEXT).click()
    settle(page, before)
    for name, data, message in UPLOADS:
        if message is None:
            continue
        path = tmp_path / name
        path.write_bytes(data)
        page.locator(UPLOADER).set_input_files(path)
        if len(data) > MAX_UPLOAD_BYTES:  # the browser refuses it before it is sent
            uploader = page.locator("[data-testid='stFileUploader']")
            uploader.get_by_text(re.compile("or smaller")).first.wait_for()
        else:
            page.locator("[data-testid='stAlert']", has_text=message).first.wait_for()
            settle(page, 0)
        assert_safe(page, f"{slug} {name}")
