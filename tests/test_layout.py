"""The rules of the house: layers import only downward, no import cycles, one name per lesson."""

from __future__ import annotations

import ast
from pathlib import Path

from tinyformers.lessons import load_lessons

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "tinyformers"

# Lower numbers are lower layers; a module may import its own layer or any layer below.
LAYERS = {
    "model": 0,
    "text": 0,
    "lessons": 0,
    "predict": 0,  # prediction questions: what a course function returns, how guesses are judged
    "hub": 1,
    "store": 1,  # answers and class rooms in a database
    "trace": 1,
    "training": 2,
    "course": 3,
    "figures": 4,
    "plan": 5,  # lesson plans: every lesson's text, live computation and handout
    "cli": 5,
    "serve": 5,
    "hosting": 0,  # the settings of a class server, read by every layer
    "i18n": 0,  # the interface's languages, used by every layer that writes text
}
SHARED_FIGURES = {"common", "bertviz", "classroom"}  # drawing helpers; the class view's chart
COURSE_PAGES = {"home", "plan", "class_view"}  # the course map, lesson plans, class view
MAX_PAGE_LINES = 380  # a page reads top to bottom; its interface text goes through _()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    return module.split(".")[1]


def package_imports(path: Path) -> set[str]:
    """The project modules a file imports (``from tinyformers.x import y`` may name a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("tinyformers"):
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tinyformers"))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in package_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_layers_import_only_downward() -> None:
    upward = []
    for module, imported in import_graph().items():
        if module == "tinyformers":
            continue
        for target in imported:
            if target != "tinyformers" and LAYERS[layer_of(target)] > LAYERS[layer_of(module)]:
                upward.append(f"{module} -> {target}")
    assert not upward, f"imports that run up the layers: {sorted(upward)}"


def test_every_layer_is_known() -> None:
    layers = {layer_of(m) for m in import_graph() if m != "tinyformers"}
    assert layers <= set(LAYERS), f"modules outside the known layers: {layers - set(LAYERS)}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A list of modules that import each other in a loop, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    graph = {
        m: {t for t in imported if t != "tinyformers"} for m, imported in import_graph().items()
    }
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def lesson_names() -> set[str]:
    return {lesson.slug.replace("-", "_") for lesson in load_lessons()}


def test_course_and_figures_modules_are_named_by_lessons() -> None:
    lessons = lesson_names()
    course = {p.stem for p in (PACKAGE / "course").glob("*.py")} - {"__init__"}
    figures = {p.stem for p in (PACKAGE / "figures").glob("*.py")} - {"__init__"}
    pages = {p.stem for p in (ROOT / "app" / "app_pages").glob("*.py")} - COURSE_PAGES
    assert course <= lessons, f"course modules that are not lessons: {course - lessons}"
    assert figures - SHARED_FIGURES <= lessons, (
        f"figures not named by a lesson: {figures - lessons}"
    )
    assert pages == lessons, f"pages and lessons differ: {pages ^ lessons}"


def test_lesson_tests_are_named_by_lessons() -> None:
    lessons = lesson_names()
    for folder in ("course", "figures", "app"):
        for path in (ROOT / "tests" / folder).glob("test_*.py"):
            name = path.stem.removeprefix("test_")
            allowed = lessons | (SHARED_FIGURES if folder == "figures" else set())
            app_modules = {"streamlit_app", "widgets", "questions"} | COURSE_PAGES
            allowed |= app_modules if folder == "app" else set()
            assert any(name == n or name.startswith(n + "_") for n in allowed), (
                f"tests/{folder}/{path.name} is not named by a lesson"
            )


def test_the_core_never_imports_streamlit() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in PACKAGE.rglob("*.py")
        if "streamlit" in {n.split(".")[0] for n in imported_top_level(p)}
    ]
    assert not offenders, f"core modules importing streamlit: {offenders}"


def imported_top_level(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_page_script_is_over_300_lines() -> None:
    """Pages only wire widgets to ``course`` and ``figures``; the rest lives below them."""
    long = {
        p.name: n
        for p in (ROOT / "app" / "app_pages").glob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_PAGE_LINES
    }
    assert not long, f"page scripts over {MAX_PAGE_LINES} lines: {long}"
