"""Small shared fixtures: seeded tiny models and tiny trained tokenizers."""

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from tinyformers.model.build import build_model
from tinyformers.model.config import BertConfig, GPTConfig, Seq2SeqConfig
from tinyformers.text.tokenizers import Tokenizer, train_bpe, train_char

# Tiny models run fastest on one thread; a second one only spins when the CPU is shared.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def torch_threads_left_at_one():
    """A test that leaves torch on more threads fails. The count is per process: every later
    test in the process would use them, and with the CPU shared each small operation then
    waits for a thread another process holds (a ten- to twenty-fold slow-down)."""
    yield
    threads = torch.get_num_threads()
    if threads != 1:
        torch.set_num_threads(1)
        pytest.fail(f"the test left torch on {threads} threads; the suite runs on one")


def pytest_configure(config) -> None:
    """Saved work from pages and servers under test goes to a temporary folder, never the
    user's own."""
    if "TINYFORMERS_WORK_DIR" not in os.environ:
        import tempfile

        os.environ["TINYFORMERS_WORK_DIR"] = tempfile.mkdtemp(prefix="tinyformers-work-")


# --- how two test processes share the files ------------------------------------------------

# Files that start servers of their own (replicas, nginx, a restart, many sessions, training
# behind a browser). They form one unit of work, so one process runs them one after another:
# two such files at once on two cores starve each other's servers.
SERVERS = (
    "tests/e2e/test_class_room.py",
    "tests/e2e/test_closed_tab.py",
    "tests/e2e/test_predictions.py",
    "tests/e2e/test_saved_work.py",
    "tests/e2e/test_training.py",
    "tests/app/test_streamlit_app_sessions.py",
    "tests/test_deploy.py",
    "tests/test_isolation.py",
)
SERVERS_UNIT = "servers"

# The other long files, longest first (as measured in a full run); the rest follow in their
# usual order. Long units first, short ones last, keeps both processes busy to the end.
LONGEST = (
    "tests/e2e/test_pages_later.py",
    "tests/e2e/test_pages.py",
    "tests/e2e/test_hostile_inputs.py",
    "tests/test_hostile_inputs.py",
    "tests/e2e/test_links.py",
    "tests/training/test_jobs.py",
    "tests/app/test_multi_head.py",
    "tests/app/test_train.py",
    "tests/app/test_widgets_selections.py",
    "tests/app/test_gpt.py",
    "tests/app/test_scaling.py",
    "tests/app/test_questions.py",
    "tests/test_links.py",
    "tests/hub/test_checkpoint.py",
    "tests/app/test_masks.py",
    "tests/course/test_task_heads.py",
    "tests/training/test_zoo.py",
)


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items) -> None:
    """The server unit first, then the long files, longest first, then the rest."""

    def rank(item) -> int:
        path = file_of(item.nodeid)
        if path in SERVERS:
            return 0
        return 1 + LONGEST.index(path) if path in LONGEST else 1 + len(LONGEST)

    items.sort(key=rank)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """With ``--dist loadfile``: whole files per process (module fixtures and the browser's
    server stay in one process), the server files as one unit, taken in the order collected."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesInOrder(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = file_of(nodeid)
            return SERVERS_UNIT if path in SERVERS else path

    config.option.loadscopereorder = False  # xdist would sort the units by their test count
    return FilesInOrder(config, log)


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--screenshots",
        default=None,
        help="a folder for the browser tests to save page screenshots to (none are taken "
        "without it; the README's are in assets/screenshots: pass that folder to refresh them)",
    )


TINY = dict(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=32)
TEXT = "the cat sat on the mat. the dog sat on the log. a cat and a dog!\n" * 8


def seeded_model(config, seed: int = 0, std: float = 0.2) -> nn.Module:
    """A model in eval mode whose every parameter is random.

    The standard initialisation sets biases to zero and LayerNorm weights to one, which would
    hide a bias or LayerNorm tensor that is swapped, dropped or mapped to the wrong name.
    """
    torch.manual_seed(seed)
    model = build_model(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, std)
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.add_(1.0)  # keep LayerNorm gains near one, as in a trained model
    return model.eval()


@pytest.fixture
def tiny() -> dict[str, int]:
    """The sizes every tiny model below is built with."""
    return dict(TINY)


@pytest.fixture
def make_model():
    """``make_model(GPTConfig, position="rotary")``: a seeded tiny model of that family."""

    def make(config_class, seed: int = 0, **changes) -> nn.Module:
        return seeded_model(config_class(**{**TINY, **changes}), seed)

    return make


@pytest.fixture
def tiny_gpt(make_model) -> nn.Module:
    return make_model(GPTConfig)


@pytest.fixture
def tiny_bert(make_model) -> nn.Module:
    return make_model(BertConfig)


@pytest.fixture
def tiny_seq2seq(make_model) -> nn.Module:
    return make_model(Seq2SeqConfig)


@pytest.fixture(scope="session")
def char_tokenizer() -> Tokenizer:
    return train_char(TEXT)


@pytest.fixture(scope="session")
def bpe_tokenizer() -> Tokenizer:
    return train_bpe(TEXT, vocab_size=300)


# --- one Chromium for every browser test (Playwright's sync API allows one session) ---------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright; browser tests skip without them."""
    if not CHROMIUM.exists():
        message = f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it; a skip there would hide every browser test
        pytest.skip(message)
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="browser tests need the playwright package"
    )
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# --- pages, headless ----------------------------------------------------------------------

APP_SCRIPT = str(ROOT / "app" / "streamlit_app.py")


def _open_page(page: str | None = None):
    """Run the app headless and, given ``app_pages/<file>.py``, switch to that page."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP_SCRIPT, default_timeout=180)  # generous: the CPU may be shared
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    assert not at.exception, at.exception
    return at


def _open_link(page: str, params: dict[str, str | list[str]]):
    """Open ``app_pages/<file>.py`` headless the way a shared link does: in a new session,
    with ``params`` in its URL."""
    from streamlit.testing.v1 import AppTest
    from streamlit.util import calc_hash

    at = AppTest.from_file(APP_SCRIPT, default_timeout=180)
    at.query_params.update(params)
    at.switch_page(page)
    # Before a session's first run, AppTest names a page by its file name; the router serves
    # lessons at their slug (``url_path``), which is what a link opens.
    at._page_hash = calc_hash(Path(page).stem.replace("_", "-"))
    at.run()
    return at


@pytest.fixture(scope="session")
def open_link():
    """A function that opens a page headless from a link (``open_link("app_pages/x.py", {…})``)."""
    return _open_link


@pytest.fixture(scope="session")
def open_page():
    """A function that opens a page of the app headless (``open_page("app_pages/x.py")``)."""
    return _open_page


def _module_page(request) -> str:
    """The page named by ``PAGE`` in the test module that asks for a page fixture."""
    page = getattr(request.module, "PAGE", None)
    if page is None:
        pytest.fail(f'{request.module.__name__} needs PAGE = "app_pages/<file>.py" for its page')
    return page


@pytest.fixture(scope="module")
def page(request):
    """The page the test module names in ``PAGE``, opened once for the module's tests that only
    read it."""
    return _open_page(_module_page(request))


@pytest.fixture
def fresh(request):
    """The page the test module names in ``PAGE``, opened anew for a test that changes it."""
    return _open_page(_module_page(request))
