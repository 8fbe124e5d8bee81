"""Every third-party import is declared in ``pyproject.toml``.

A module that arrives only because some other package depends on it today can vanish with that
package's next release; a fresh machine then fails on the README's commands. This test reads every
import under ``src/``, ``app/``, ``tests/``, ``bench/`` and ``deploy/`` (imports inside functions
included) and checks that each is the standard library, the project's own code, or provided by a
distribution that ``pyproject.toml`` names directly.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("src", "app", "tests", "bench", "deploy")


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement ("torch>=2.2" -> "torch")."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert name, f"cannot read requirement {requirement!r}"
    return normalise(name.group(0))


def normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def declared_distributions(pyproject: dict) -> set[str]:
    project = pyproject["project"]
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return {requirement_name(r) for r in requirements}


def local_modules() -> set[str]:
    """Names that resolve to the project's own files: the package, app, bench and deploy scripts,
    tests."""
    names = {"tinyformers", "tests", "bench", "deploy"}
    for folder in ("app", "app/app_pages", "bench", "deploy", "tests", "tests/e2e"):
        for path in (ROOT / folder).iterdir():
            if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists()):
                names.add(path.stem)
    return names


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file, wherever in the file it stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def third_party_imports() -> dict[str, list[str]]:
    """Module name -> files importing it, for every import that is not stdlib or local."""
    skip = set(sys.stdlib_module_names) | local_modules() | {"__future__"}
    found: dict[str, list[str]] = {}
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for name in imported_modules(path) - skip:
                found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared() -> None:
    declared = declared_distributions(tomllib.loads((ROOT / "pyproject.toml").read_text()))
    providers = packages_distributions()
    undeclared = {}
    for module, files in sorted(third_party_imports().items()):
        # A module not installed here (a backport for older Pythons) must be named as itself.
        distributions = {normalise(d) for d in providers.get(module, [module])}
        if not distributions & declared:
            undeclared[module] = (sorted(distributions) or ["not installed"], files[:3])
    assert not undeclared, (
        "imported but not declared in pyproject.toml (module: providing distributions, files): "
        + "; ".join(f"{m}: {d} in {f}" for m, (d, f) in undeclared.items())
    )


def test_the_scan_finds_imports_inside_functions(tmp_path) -> None:
    source = tmp_path / "example.py"
    source.write_text(
        "import os\nfrom . import sibling\n\ndef later():\n    import scipy.stats\n"
        "    from pandas import DataFrame\n",
        encoding="utf-8",
    )
    assert imported_modules(source) == {"os", "scipy", "pandas"}


def test_requirement_names_are_normalised() -> None:
    assert requirement_name("torch>=2.2") == "torch"
    assert requirement_name("PyYAML>=6") == "pyyaml"
    assert requirement_name("ruamel_yaml[extra] ; python_version<'3.12'") == "ruamel-yaml"
