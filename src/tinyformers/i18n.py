"""The app's two languages: gettext catalogs managed with Babel, and numbers in a locale's style.

Interface text is marked in code with ``_("…")`` and, where a count decides the form,
``ngettext("{n} token", "{n} tokens", n)``; both answer in the current language, which the app
names once per process with ``set_language_source`` (a page run reads its session's choice;
anywhere else, such as a background job or a test, it is English). ``pybabel extract`` collects the marked strings into
``locale/tinyformers.pot``, ``pybabel update`` carries them into each language's ``.po`` and
``pybabel compile`` writes the ``.mo`` files read here (see the README's "Languages" section).
Lesson text is not in the catalogs: each lesson has a file per language (``tinyformers.lessons``).
"""

from __future__ import annotations

import gettext
import re
import string
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import read_mo
from babel.numbers import format_decimal, get_decimal_symbol, get_group_symbol

LANGUAGES = {"en": "English", "ru": "Русский"}
DEFAULT_LANGUAGE = "en"
DOMAIN = "tinyformers"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def negotiate(preferred: str | None) -> str:
    """The app's language for a browser that prefers ``preferred`` (``"ru-RU"``, ``"en_GB"``,
    a list like ``"ru,en;q=0.8"``, or nothing): Russian for Russian, English otherwise."""
    if not preferred:
        return DEFAULT_LANGUAGE
    tags = [part.split(";")[0].strip().replace("_", "-") for part in preferred.split(",")]
    for tag in tags:
        try:
            language = Locale.parse(tag, sep="-").language
        except (ValueError, TypeError, UnknownLocaleError):
            continue
        if language in LANGUAGES:
            return language
    return DEFAULT_LANGUAGE


def checked(language: str) -> str:
    """``language`` if the app has it; ValueError otherwise."""
    if language not in LANGUAGES:
        known = ", ".join(LANGUAGES)
        raise ValueError(f"no language {language!r} (the app has {known})")
    return language


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of ``language`` (English is the source text: no catalog)."""
    if checked(language) == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])


def translate(message: str, language: str) -> str:
    return translations(language).gettext(message)


def translate_plural(singular: str, plural: str, n: int, language: str) -> str:
    """The form of a message for ``n`` in ``language`` (Russian has three: 1 токен, 2 токена,
    5 токенов), with ``{n}`` filled in the language's number style."""
    form = translations(language).ngettext(singular, plural, n)
    return form.replace("{n}", number(n, language))


def number(value: float, language: str) -> str:
    """``value`` written as ``language`` writes numbers (12,288 and 0.25 in English; 12 288
    and 0,25 in Russian)."""
    return format_decimal(value, locale=checked(language))


_language_source: Callable[[], str] = lambda: DEFAULT_LANGUAGE  # noqa: E731


def set_language_source(source: Callable[[], str]) -> None:
    """Where ``_`` and ``ngettext`` learn the current language (the app: the session's)."""
    global _language_source
    _language_source = source


def current_language() -> str:
    language = _language_source()
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def _(message: str) -> str:
    """``message`` in the current language."""
    language = current_language()
    return Message.of(translate(message, language), language)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of a message for ``n`` in the current language, ``{n}`` filled in."""
    language = current_language()
    return Message.of(translate_plural(singular, plural, n, language), language)


class Message(str):
    """A translated message whose ``format`` writes the numbers it fills in as its language
    writes them: ``_("{share} of the weight").format(share=f"{w:.1%}")`` gives "12.5% of the
    weight" in English and "12,5% веса" in Russian (see ``restyle``)."""

    language = DEFAULT_LANGUAGE

    @classmethod
    def of(cls, text: str, language: str) -> str:
        """``text`` as a message of ``language`` (English text stays a plain ``str``)."""
        if language == DEFAULT_LANGUAGE:
            return text
        message = cls(text)
        message.language = language
        return message

    def format(self, *args: object, **kwargs: object) -> str:
        return _NumberStyle(self.language).vformat(self, args, kwargs)


class _NumberStyle(string.Formatter):
    """``str.format`` that writes each field that is a number in ``language``'s style."""

    def __init__(self, language: str) -> None:
        self.language = language

    def format_field(self, value: object, format_spec: str) -> str:
        text = super().format_field(value, format_spec)
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return text
        return restyle(text, self.language)


def N_(message: str) -> str:  # noqa: N802  gettext's name for it, which pybabel extracts
    """Mark ``message`` for the catalogs where it is defined, and leave it in English: it is
    translated with ``_()`` where it is shown (a table of names built once, at import)."""
    return message


def significant(value: float, language: str, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, as ``f"{value:.3g}"`` writes it (0.84, 12.3,
    250), in ``language``'s number style (Russian: 0,84; exponents stay as Python writes them)."""
    text = f"{value:.{digits}g}"
    if checked(language) == DEFAULT_LANGUAGE or "e" in text or "n" in text:
        return text
    return format_decimal(Decimal(text), locale=language, decimal_quantization=False)


FIELD = re.compile(r"\{(\w+)\}")
MIN_LITERAL = 8  # characters of a template's own text, so that "{error}" alone matches nothing


def translate_written(text: str, language: str) -> str:
    """``text``, written in English where no page ran (a background run's error), in
    ``language``: a catalog message as such, or one whose ``{placeholders}`` were filled (the
    values stay as they were written); any other text as it is."""
    if checked(language) == DEFAULT_LANGUAGE or not text:  # (gettext of "" is the header)
        return text
    found = translate(text, language)
    if found != text:
        return found
    for pattern, message in _templates(language):
        if match := pattern.fullmatch(text):
            return translate(message, language).format(**match.groupdict())
    return text


@lru_cache(maxsize=len(LANGUAGES))
def _templates(language: str) -> tuple[tuple[re.Pattern, str], ...]:
    """A pattern for every message of ``language``'s catalog with named placeholders (and no
    format specs), longest first: a filled message matches its own template before a shorter
    one it contains."""
    with (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo").open("rb") as f:
        catalog = read_mo(f)
    found = []
    for message in catalog:
        if not isinstance(message.id, str) or not message.string or not FIELD.search(message.id):
            continue
        literal = FIELD.sub("", message.id)
        if "{" in literal or "}" in literal or len(literal.strip()) < MIN_LITERAL:
            continue
        found.append((_pattern(message.id), message.id))
    return tuple(sorted(found, key=lambda item: -len(item[1])))


def _pattern(message: str) -> re.Pattern:
    """A message's text with each ``{name}`` standing for any text (the same text each time)."""
    parts, seen, start = [], set(), 0
    for field in FIELD.finditer(message):
        parts.append(re.escape(message[start : field.start()]))
        name = field[1]
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
        seen.add(name)
        start = field.end()
    parts.append(re.escape(message[start:]))
    return re.compile("".join(parts), re.S)


class LazyMessage(str):
    """A message (marked with ``N_``) that is translated each time it is read as text, with
    ``str()``: for an interface that takes its text once, at import, and shows it later, such
    as ``st.cache_resource(show_spinner=…)``, whose spinner reads it with ``str()``."""

    __slots__ = ()

    def __str__(self) -> str:
        return _(str.__str__(self))


# A number as Python writes it in English (f"{x:,}", f"{x:.2f}", f"{x:.1%}", f"{x:.2e}"):
# optional sign, digits with optional "," groups of three, decimals, exponent, percent sign.
ENGLISH_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]?\d+)?%?")


def restyle(text: str, language: str) -> str:
    """``text``, if it is one number as Python writes it in English (12,288.5, 0.25, 12.5%),
    with ``language``'s separators (Russian: 12 288,5 with a no-break space, 0,25, 12,5%: the
    percent sign stays as the lessons write it); any other text as it is."""
    if checked(language) == DEFAULT_LANGUAGE or not ENGLISH_NUMBER.fullmatch(text):
        return text
    group, decimal = get_group_symbol(language), get_decimal_symbol(language)
    return text.translate({ord(","): group, ord("."): decimal})
