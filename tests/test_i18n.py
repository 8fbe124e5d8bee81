"""The interface in two languages: Babel's catalogs compile, hold every marked string, keep
their placeholders, and pick Russian plural forms; the language follows the browser and the
URL."""

from __future__ import annotations

import gettext
import re
import shutil
from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from tinyformers.i18n import (
    DOMAIN,
    LANGUAGES,
    LOCALE_DIR,
    LazyMessage,
    Message,
    negotiate,
    number,
    restyle,
    significant,
    translate,
    translate_plural,
    translate_written,
)

ROOT = Path(__file__).resolve().parents[1]
CATALOG = LOCALE_DIR / "ru" / "LC_MESSAGES" / f"{DOMAIN}.po"
COMPILED = CATALOG.with_suffix(".mo")
BRACES = re.compile(r"\{[a-z_]+\}")


def pybabel(*args: str) -> None:
    CommandLineInterface().run(["pybabel", *args])


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    """Every string the code marks for translation, as ``pybabel extract`` finds them."""
    template = tmp_path_factory.mktemp("pot") / f"{DOMAIN}.pot"
    mapping = LOCALE_DIR / "babel.cfg"
    pybabel("extract", "-F", str(mapping), "-o", str(template), "--no-location", str(ROOT))
    return template


def messages(path: Path) -> dict:
    with path.open("rb") as f:
        return {m.id: m for m in read_po(f) if m.id}


def test_every_marked_string_has_a_russian_translation(extracted: Path) -> None:
    wanted, catalog = messages(extracted), messages(CATALOG)
    assert len(wanted) > 50
    missing = [key for key in wanted if key not in catalog]
    assert missing == [], f"not in the Russian catalog (run pybabel update): {missing}"
    untranslated = [
        key
        for key, message in catalog.items()
        if message.fuzzy
        or not (all(message.string) if isinstance(message.string, tuple) else message.string)
    ]
    assert untranslated == []


def test_a_translation_keeps_the_placeholders_of_its_source() -> None:
    for key, message in messages(CATALOG).items():
        source = key if isinstance(key, str) else key[1]
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        for form in forms:
            assert set(BRACES.findall(form)) == set(BRACES.findall(source)), (key, form)


def test_the_catalog_compiles_to_the_shipped_file(tmp_path: Path) -> None:
    target = tmp_path / "ru" / "LC_MESSAGES"
    target.mkdir(parents=True)
    shutil.copy(CATALOG, target)
    pybabel("compile", "-d", str(tmp_path), "-D", DOMAIN, "--statistics")
    fresh = gettext.GNUTranslations((target / COMPILED.name).open("rb"))
    shipped = gettext.GNUTranslations(COMPILED.open("rb"))
    assert fresh._catalog == shipped._catalog, "run pybabel compile: the .mo is out of date"


@pytest.mark.parametrize(
    ("n", "form"),
    [
        (1, "токен"),
        (2, "токена"),
        (4, "токена"),
        (5, "токенов"),
        (11, "токенов"),
        (12, "токенов"),
        (21, "токен"),
        (22, "токена"),
        (25, "токенов"),
        (111, "токенов"),
    ],
)
def test_russian_plural_forms(n: int, form: str) -> None:
    assert translate_plural("{n} token", "{n} tokens", n, "ru") == f"{number(n, 'ru')} {form}"


def test_english_is_the_source_text() -> None:
    assert translate("Course map", "en") == "Course map"
    assert translate("Course map", "ru") == "Карта курса"
    assert translate_plural("{n} token", "{n} tokens", 1, "en") == "1 token"
    assert translate_plural("{n} token", "{n} tokens", 12288, "en") == "12,288 tokens"


def test_numbers_follow_the_language() -> None:
    assert number(12288, "en") == "12,288" and number(0.25, "en") == "0.25"
    assert number(12288, "ru") == "12\xa0288" and number(0.25, "ru") == "0,25"
    with pytest.raises(ValueError, match="no language 'fr'"):
        number(1, "fr")


def test_numbers_python_wrote_in_english_take_the_languages_separators() -> None:
    assert [significant(v, "ru") for v in (0.84, 12.3, 250, 0.000123)] == [
        "0,84",
        "12,3",
        "250",
        "0,000123",
    ]
    assert significant(12.3, "en") == "12.3" and significant(12345.6, "ru") == "1.23e+04"
    assert restyle("12,288.5", "ru") == "12\xa0288,5" and restyle("12.5%", "ru") == "12,5%"
    for text in ("bert-2.0", "3.5 cats", "1,2", "v1.2", ""):
        assert restyle(text, "ru") == text
    assert restyle("12,288.5", "en") == "12,288.5"


def test_text_written_in_english_away_from_a_page_is_translated_when_shown() -> None:
    message = "a word has at most {count} characters"
    assert translate_written(message.format(count=24), "ru") == translate(message, "ru").format(
        count=24
    )
    assert translate_written("Course map", "ru") == "Карта курса"
    assert translate_written("Course map", "en") == "Course map"
    assert translate_written("no message of the catalog", "ru") == "no message of the catalog"
    assert translate_written("", "ru") == ""


def test_a_lazy_message_is_translated_each_time_it_is_read(monkeypatch) -> None:
    from tinyformers import i18n

    lazy = LazyMessage("Course map")
    assert str(lazy) == "Course map"
    monkeypatch.setattr(i18n, "_language_source", lambda: "ru")
    assert str(lazy) == "Карта курса"


@pytest.mark.parametrize(
    ("preferred", "language"),
    [
        ("ru-RU", "ru"),
        ("ru", "ru"),
        ("en-US", "en"),
        ("en_GB", "en"),
        ("de-DE,ru;q=0.8", "ru"),
        ("fr-FR", "en"),
        ("", "en"),
        (None, "en"),
        ("<script>", "en"),
        ("x" * 500, "en"),
    ],
)
def test_a_first_visit_follows_the_browser(preferred, language) -> None:
    assert negotiate(preferred) == language


def test_the_languages() -> None:
    assert set(LANGUAGES) == {"en", "ru"}


def test_a_russian_message_fills_in_numbers_in_the_russian_style() -> None:
    message = Message.of(translate("= output ({rows} × {columns})", "ru"), "ru")
    assert isinstance(message, Message)
    shown = message.format(rows=f"{12288:,}", columns=0.25)
    assert "12\u00a0288" in shown and "0,25" in shown and "12,288" not in shown
    template = Message.of("{share:.1%} · {value:.2f} · {word} · {token!r} · {year}", "ru")
    assert template.format(share=0.125, value=3.14159, word="ln_1", token="3.5", year=2017) == (
        "12,5% · 3,14 · ln_1 · '3.5' · 2017"
    )


def test_an_english_message_is_a_plain_string_and_formats_as_python_does() -> None:
    message = Message.of("{share:.1%} of {n}", "en")
    assert type(message) is str
    assert message.format(share=0.125, n=f"{12288:,}") == "12.5% of 12,288"
