"""Small sequence-to-sequence tasks with exact answers, for encoder-decoder models.

* ``reverse``: "hello" -> "olleh" (3-12 lowercase letters)
* ``sort``: "3 1 2" -> "1 2 3" (3-12 digits separated by spaces)
* ``date``: "12 March 2021" -> "2021-03-12" (real calendar dates from 1900 to 2099)

``make_example`` draws one (source, target) pair, ``solve`` computes the target for any source
and rejects malformed input, and ``train_test_split`` keeps held-out sources out of training.
"""

import calendar
import random
import re
import string

TASKS = ("reverse", "sort", "date")

MIN_LENGTH = 3
MAX_LENGTH = 12
FIRST_YEAR = 1900
LAST_YEAR = 2099
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

_LETTERS = re.compile(r"[a-z]+")
_DIGITS = re.compile(r"[0-9]( [0-9])*")
_DATE = re.compile(r"(?P<day>[0-9]{1,2}) (?P<month>[A-Za-z]+) (?P<year>[0-9]{4})")


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task '{task}'; choose one of {', '.join(TASKS)}")


def _random_length(rng: random.Random) -> int:
    return rng.randint(MIN_LENGTH, MAX_LENGTH)


def _random_source(task: str, rng: random.Random) -> str:
    if task == "reverse":
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(_random_length(rng)))
    if task == "sort":
        return " ".join(rng.choice(string.digits) for _ in range(_random_length(rng)))
    year = rng.randint(FIRST_YEAR, LAST_YEAR)
    month = rng.randint(1, 12)
    day = rng.randint(1, calendar.monthrange(year, month)[1])
    return f"{day} {MONTHS[month - 1]} {year}"


def make_example(task: str, rng: random.Random) -> tuple[str, str]:
    """One random (source, target) pair for ``task``."""
    _check_task(task)
    source = _random_source(task, rng)
    return source, solve(task, source)


def make_dataset(task: str, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` random pairs; the same seed always gives the same list (sources may repeat)."""
    _check_task(task)
    if n < 0:
        raise ValueError(f"n must be 0 or more, got {n}")
    rng = random.Random(seed)
    return [make_example(task, rng) for _ in range(n)]


def count_sources(task: str) -> int:
    """How many different sources ``make_example`` can produce for ``task``."""
    _check_task(task)
    lengths = range(MIN_LENGTH, MAX_LENGTH + 1)
    if task == "reverse":
        return sum(len(string.ascii_lowercase) ** length for length in lengths)
    if task == "sort":
        return sum(len(string.digits) ** length for length in lengths)
    years = range(FIRST_YEAR, LAST_YEAR + 1)
    return sum(365 + calendar.isleap(year) for year in years)


def train_test_split(
    task: str, n_train: int, n_test: int, seed: int = 0
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Distinct examples split into train and test; no source appears twice or in both."""
    _check_task(task)
    if n_train < 0 or n_test < 0:
        raise ValueError(f"n_train and n_test must be 0 or more, got {n_train} and {n_test}")
    wanted = n_train + n_test
    if wanted > count_sources(task):
        raise ValueError(
            f"only {count_sources(task):,} different '{task}' sources exist, "
            f"but {wanted:,} were asked for"
        )
    rng = random.Random(seed)
    examples: dict[str, str] = {}
    attempts = 0
    while len(examples) < wanted:
        attempts += 1
        if attempts > 20 * wanted + 1000:
            raise ValueError(f"could not find {wanted} different '{task}' examples; ask for fewer")
        source, target = make_example(task, rng)
        examples.setdefault(source, target)
    pairs = list(examples.items())
    return pairs[n_test:], pairs[:n_test]


def solve(task: str, source: str) -> str:
    """The exact answer for ``source``; ValueError if the source is not in the task's format."""
    _check_task(task)
    if not isinstance(source, str):
        raise ValueError(f"the source must be text, got {type(source).__name__}")
    if task == "reverse":
        return _solve_reverse(source)
    if task == "sort":
        return _solve_sort(source)
    return _solve_date(source)


def _solve_reverse(source: str) -> str:
    if not _LETTERS.fullmatch(source):
        raise ValueError(f"reverse expects lowercase letters a-z, like 'hello'; got {source!r}")
    return source[::-1]


def _solve_sort(source: str) -> str:
    if not _DIGITS.fullmatch(source):
        raise ValueError(
            f"sort expects single digits separated by single spaces, like '3 1 2'; got {source!r}"
        )
    return " ".join(sorted(source.split()))


def _solve_date(source: str) -> str:
    match = _DATE.fullmatch(source)
    if not match:
        raise ValueError(f"date expects a date like '12 March 2021'; got {source!r}")
    day_text, month_name, year_text = match.group("day", "month", "year")
    if month_name not in MONTHS:
        raise ValueError(f"unknown month '{month_name}'; use one of {', '.join(MONTHS)}")
    day, month, year = int(day_text), MONTHS.index(month_name) + 1, int(year_text)
    if day == 0:
        raise ValueError(f"'{source}' is not a real date: days start at 1")
    if day_text != str(day):
        raise ValueError(f"write the day without a leading zero ('{day}'), got {source!r}")
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"the year must be between {FIRST_YEAR} and {LAST_YEAR}, got {year}")
    days_in_month = calendar.monthrange(year, month)[1]
    if day > days_in_month:
        raise ValueError(
            f"'{source}' is not a real date: {month_name} {year} has {days_in_month} days"
        )
    return f"{year:04d}-{month:02d}-{day:02d}"
