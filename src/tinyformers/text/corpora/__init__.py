"""Text for the models to learn from, all generated here or given by the student.

* ``stories``: a tiny English with agreement, relative clauses and pronouns, plus a parser that
  checks whether a sentence belongs to it.
* ``tasks``: reverse / sort / date sequence-to-sequence tasks with exact answers.
* ``user_text``: checks for text a student uploads or pastes.
* ``lesson_corpus``: the lessons' own Markdown text, as a small real-English corpus.
"""

from pathlib import Path

from tinyformers.text.corpora.stories import (
    PLURAL_VERBS,
    SINGULAR_VERBS,
    VOCABULARY,
    Sentence,
    agreement_examples,
    explain,
    generate_corpus,
    generate_sentence,
    generate_story,
    is_grammatical,
    split_sentences,
)
from tinyformers.text.corpora.tasks import (
    TASKS,
    count_sources,
    make_dataset,
    make_example,
    solve,
    train_test_split,
)
from tinyformers.text.corpora.user_text import (
    MAX_USER_TEXT_CHARS,
    UserTextError,
    clean_user_text,
    decode_upload,
)

__all__ = [
    "MAX_USER_TEXT_CHARS",
    "PLURAL_VERBS",
    "SINGULAR_VERBS",
    "TASKS",
    "VOCABULARY",
    "Sentence",
    "UserTextError",
    "agreement_examples",
    "clean_user_text",
    "count_sources",
    "decode_upload",
    "explain",
    "generate_corpus",
    "generate_sentence",
    "generate_story",
    "is_grammatical",
    "lesson_corpus",
    "make_dataset",
    "make_example",
    "solve",
    "split_sentences",
    "strip_front_matter",
    "train_test_split",
]

DEFAULT_LESSONS_DIR = Path(__file__).resolve().parents[4] / "lessons"


def strip_front_matter(markdown: str) -> str:
    """Remove a YAML front matter block (between leading "---" lines) from a Markdown text."""
    text = markdown.removeprefix("\ufeff")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return text
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return "\n".join(lines[index + 1 :])
    raise ValueError("the front matter starts with '---' but has no closing '---' line")


def lesson_corpus(lessons_dir: Path | None = None) -> str:
    """The Markdown bodies of ``lessons/*.md``, in file-name order, separated by blank lines."""
    folder = DEFAULT_LESSONS_DIR if lessons_dir is None else Path(lessons_dir)
    paths = sorted(folder.glob("*.md"))
    if not paths:
        raise ValueError(f"no lesson files (*.md) found in {folder}")
    bodies = [_lesson_body(path) for path in paths]
    return "\n\n".join(body for body in bodies if body)


def _lesson_body(path: Path) -> str:
    try:
        return strip_front_matter(path.read_text(encoding="utf-8")).strip()
    except ValueError as error:
        raise ValueError(f"{path.name}: {error}") from error
