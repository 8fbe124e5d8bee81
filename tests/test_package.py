"""The core package stands on its own: no Streamlit, a working console script."""

import subprocess
import sys


def test_core_imports_without_streamlit() -> None:
    code = (
        "import sys, tinyformers, tinyformers.model.build, tinyformers.trace, "
        "tinyformers.hub.checkpoint, tinyformers.text.tokenizers, tinyformers.hub.interop, "
        "tinyformers.cli, tinyformers.serve, tinyformers.course.gpt, tinyformers.figures.gpt; "
        "assert 'streamlit' not in sys.modules, 'core imported streamlit'; "
        "assert 'transformers' not in sys.modules, 'transformers imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_console_script_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tinyformers.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "export-hf" in out.stdout


def test_export_hf_reports_missing_folder(tmp_path) -> None:
    from tinyformers.cli import main

    assert main(["export-hf", str(tmp_path / "nope"), str(tmp_path / "out")]) == 1


def test_ruff_is_clean() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=root, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_readme_describes_every_core_module() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    package = root / "src" / "tinyformers"
    modules = sorted(
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if p.name != "__init__.py" and p.parent.name != "corpora"
    )
    missing = [m for m in modules if f"`{m}`" not in readme]
    assert not missing, f"the README's architecture table lacks {missing}"
    assert "`text/corpora/`" in readme
