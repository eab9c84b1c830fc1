"""The package's folders follow the data flow, and the imports between them run one way, as each package's
docstring says: ``policy`` and ``routing`` decide and never send; ``transport`` knows no policy or wire
format; nothing in ``router`` but the CLI itself reaches into ``tools``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import router

PACKAGE = Path(router.__file__).parent
FORBIDDEN = {
    "policy": ("router.execution", "router.transport", "router.adapters", "router.server", "router.tools"),
    "routing": ("router.execution", "router.transport", "router.adapters", "router.server", "router.tools"),
    "transport": (
        "router.policy",
        "router.routing",
        "router.execution",
        "router.adapters",
        "router.server",
        "router.tools",
    ),
    "execution": ("router.server", "router.tools"),
    "adapters": ("router.execution", "router.server", "router.tools"),
    "server": ("router.tools",),
}
TOP_LEVEL = {"__init__", "client", "async_client", "errors", "types", "events", "settings"}


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute names (router never uses relative imports)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


class TestLayout:
    @pytest.mark.parametrize("package", sorted(FORBIDDEN))
    def test_imports_run_down_the_flow(self, package: str) -> None:
        """No module of ``package`` imports a package it must not know."""
        for path in (PACKAGE / package).rglob("*.py"):
            wrong = {name for name in imports_of(path) if name.startswith(FORBIDDEN[package])}
            assert not wrong, f"{path.relative_to(PACKAGE)} imports {sorted(wrong)}"

    def test_the_top_level_is_the_public_surface(self) -> None:
        """Only the public modules sit at the top; everything else lives in a package that says what it owns."""
        assert {p.stem for p in PACKAGE.glob("*.py")} == TOP_LEVEL
        for folder in (p for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"):
            doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
            assert doc, f"router/{folder.name}/__init__.py has no docstring saying what it owns"

    def test_nothing_outside_the_cli_imports_the_tools(self) -> None:
        """The tools use the library as a user would; the library never needs them."""
        for path in PACKAGE.rglob("*.py"):
            if "tools" in path.relative_to(PACKAGE).parts:
                continue
            assert not {n for n in imports_of(path) if n.startswith("router.tools")}, path
