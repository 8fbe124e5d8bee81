"""Character corpora other than Shakespeare for `train_speed.py`, written to a folder.

    python bench/corpora.py OUT_DIR

- ``stories.txt``: the shipped stories language (the text gpt-stories learns), about 1 MB;
- ``python-source.txt``: this Python's standard library source, files in name order, cut to
  the size of tinyshakespeare (1,115,394 characters) so the two are comparable.

Neither is stored in the repository; both are made again on any machine the same way.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

from tinyformers.training import zoo

SIZE = 1_115_394


def python_source(size: int = SIZE) -> str:
    """The standard library's ``.py`` files, name order, until ``size`` characters."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts, total = [], 0
    for path in sorted(root.glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        parts.append(text)
        total += len(text)
        if total >= size:
            break
    return "".join(parts)[:size]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("stories", zoo.stories_text()), ("python-source", python_source())):
        path = out / f"{name}.txt"
        path.write_text(text, encoding="utf-8")
        print(f"{path}  {len(text):,} characters, {len(set(text))} distinct")
    return 0


if __name__ == "__main__":
    sys.exit(main())
