"""The package's layers, as docs/design.md draws them: every import (at module level or inside a function) goes to the
importer's own package or to a layer below it, every package is in the drawing, and no module outside stages/ (and
the pipeline above it) imports a stage."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "compress_export"


def drawn_layers() -> list[list[str]]:
    """Top to bottom: the names in each row of the fenced block under '## Layers' in docs/design.md."""
    text = (ROOT / "docs" / "design.md").read_text()
    block = re.search(r"^## Layers\n.*?^```\n(.*?)^```", text, re.S | re.M)
    assert block, "docs/design.md has no '## Layers' drawing"
    return [line.split("|")[0].split() for line in block.group(1).splitlines() if "|" in line]


def unit_of(module: str) -> str:
    """The top-level package or root module a module belongs to (compress_export.search.budget -> search)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_parts(path: Path) -> list[str]:
    return list(path.relative_to(ROOT).with_suffix("").parts)  # a package's __init__ ends in "__init__"


def imports(source: str, parts: list[str]) -> list[tuple[int, str]]:
    """(line, imported compress_export module) of every import in the module `parts`, relative ones resolved."""
    package = parts[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" for alias in node.names]
            found += [(node.lineno, name if _is_module(name) else target) for name in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, name) for line, name in found if name == "compress_export" or name.startswith("compress_export.")]


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_the_drawing_names_every_package_once():
    drawn = [name for row in drawn_layers() for name in row]
    present = {path.stem if path.is_file() else path.name for path in PACKAGE.iterdir()
               if (path.suffix == ".py" or (path / "__init__.py").is_file()) and path.name != "__pycache__"}
    assert sorted(drawn) == sorted(set(drawn)), "a package is drawn twice"
    assert set(drawn) == present, f"drawn, absent: {set(drawn) - present}; present, not drawn: {present - set(drawn)}"


def test_no_module_imports_upward_or_sideways():
    rank = {name: depth for depth, row in enumerate(reversed(drawn_layers())) for name in row}
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = unit_of(".".join(module_parts(path)))
        for line, module in imports(path.read_text(), module_parts(path)):
            imported = unit_of(module)
            if imported != importer and rank[imported] >= rank[importer]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({importer}) imports {module} ({imported})")
    assert not wrong, "imports against the drawing:\n" + "\n".join(wrong)


def test_nothing_below_the_pipeline_imports_a_stage():
    for path in sorted(PACKAGE.rglob("*.py")):
        if unit_of(".".join(module_parts(path))) in ("stages", "pipeline", "api", "cli", "__main__"):
            continue
        assert not [m for _, m in imports(path.read_text(), module_parts(path)) if unit_of(m) == "stages"], path


def test_the_walk_sees_function_level_and_relative_imports():
    """The checker itself: imports inside functions, relative ones, of modules and of names, in modules and in
    package __init__ files."""
    source = "from . import layout\nfrom .. import specs\ndef f():\n    from ..stages.target import build_target\n"
    assert imports(source, ["compress_export", "data", "probe"]) == [
        (1, "compress_export.data.layout"), (2, "compress_export.specs"), (4, "compress_export.stages.target")]
    assert imports("from .writer import x\n", ["compress_export", "bundle", "__init__"]) == [
        (1, "compress_export.bundle.writer")]
