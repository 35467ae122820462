"""The structure docs/ARCHITECTURE.md promises, checked: the import rules (import-linter's
contracts in pyproject.toml), modules small enough to hold one thing, no references to a design
document that is not in the repository."""

import subprocess
import sys

from conftest import ROOT

PACKAGE = ROOT / "gengap_tui"
MAX_LINES = 600


def test_import_contracts_hold():
    p = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                        "lint_imports_command()"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert "0 broken" in p.stdout


def test_no_module_is_a_house_of_many_rooms():
    long = {str(f.relative_to(ROOT)): n for f in PACKAGE.rglob("*.py")
            if (n := len(f.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


MAX_CLASS_LINES = 400  # issue 23: the training core split (models/, batches.py, evaluation.py)


def test_no_class_in_the_training_core_is_over_400_lines():
    import ast

    long = {}
    for f in (PACKAGE / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                long[f"{f.relative_to(ROOT)}:{node.name}"] = node.end_lineno - node.lineno + 1
    assert long == {}, f"classes in core/ over {MAX_CLASS_LINES} lines: {long}"


def test_code_points_to_the_architecture_doc_in_the_repository():
    assert (ROOT / "docs" / "ARCHITECTURE.md").is_file()
    stale = [str(f.relative_to(ROOT)) for d in ("gengap_tui", "bench", "tests") for f in (ROOT / d).rglob("*.py")
             if "DESIGN " + "§" in f.read_text(encoding="utf-8")]
    assert stale == []
