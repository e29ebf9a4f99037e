"""The use cases (bot/) reach the store and the platforms through interfaces of their own: only the
composition root and the command line know the adapters."""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).resolve().parents[1] / "bot"
WIRING = {"composition.py", "cli.py", "doctor.py"}  # and every *_cli.py: the command line


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_use_cases_do_not_import_adapters() -> None:
    use_cases = [p for p in BOT.glob("*.py") if p.name not in WIRING and not p.name.endswith("_cli.py")]
    offending = {
        path.name: sorted(name for name in imported_modules(path) if name.split(".")[0] == "adapters")
        for path in use_cases
    }
    assert {name: modules for name, modules in offending.items() if modules} == {}
    assert len(use_cases) > 10  # the check looked at the use cases, not at an empty folder
