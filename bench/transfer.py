"""Bytes a first visit downloads from a running server, as sent and as decoded.

Chromium opens the pages with an empty cache and lists every static file they load (scripts,
styles, fonts); each is then fetched again twice, once asking for gzip as a browser does (the
bytes on the wire) and once asking for no encoding (the file's own size).

    python bench/transfer.py --url http://127.0.0.1:8080 --pages ,attention
"""

from __future__ import annotations

import argparse
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.e2e.conftest import wait_for_app  # noqa: E402


def static_files(url: str, pages: list[str]) -> list[str]:
    """Every static file a first visit to ``pages`` asks for, in order."""
    seen: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_context().new_page()
        page.on("request", lambda request: seen.append(request.url))
        for slug in pages:
            page.goto(f"{url}/{slug}")
            wait_for_app(page)
        page.wait_for_load_state("networkidle")
        browser.close()
    return list(dict.fromkeys(u for u in seen if urlsplit(u).path.startswith("/static/")))


def size(url: str, encoding: str) -> int:
    request = urllib.request.Request(url, headers={"Accept-Encoding": encoding})
    with urllib.request.urlopen(request) as response:  # urllib never decodes: bytes as sent
        return len(response.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--pages", default=",attention", help="comma-separated slugs")
    args = parser.parse_args()
    files = static_files(args.url.rstrip("/"), args.pages.split(","))
    rows = [(size(u, "gzip, deflate, br"), size(u, "identity"), u) for u in files]
    scripts = [r for r in rows if r[2].endswith(".js")]
    print(f"{len(files)} static files ({len(scripts)} scripts) on a first visit to {args.pages}")
    for label, chosen in (("all", rows), ("scripts", scripts)):
        sent, own = sum(r[0] for r in chosen), sum(r[1] for r in chosen)
        print(f"  {label:8} sent {sent / 2**20:6.2f} MB   uncompressed {own / 2**20:6.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
