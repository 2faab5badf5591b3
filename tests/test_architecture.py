"""The package's layers import only downward: foundations < sources < analysis < outputs < top
(stages, prepare, produce, cli). Read from the source (every ``import``, at module level or inside
a function)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"
FOUNDATIONS = {"config", "checks", "errors", "io", "progress", "geo", "aci"}
LAYERS = {"foundations": 0, "sources": 1, "analysis": 2, "outputs": 3, "top": 4}


def layer(dotted: str) -> str:
    """Layer of a module ``pipeline.x[.y]``."""
    parts = dotted.split(".")[1:]
    if not parts or parts[0] in FOUNDATIONS or parts[0] == "__init__":
        return "foundations"
    if parts[0] in ("sources", "analysis", "outputs"):
        return parts[0]
    return "top"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported(path: Path) -> list[tuple[int, str]]:
    """Modules of the package that ``path`` imports, as dotted names, with their line."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("pipeline"):
                continue
            if node.module is None or target.count(".") < 1:
                found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("pipeline")]
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_only_run_downward(path):
    own = layer(module_name(path))
    upward = [
        f"line {line}: {target} ({layer(target)})"
        for line, target in imported(path)
        if target != "pipeline.__version__" and LAYERS[layer(target)] > LAYERS[own]
    ]
    assert not upward, f"{module_name(path)} ({own}) imports upward: {upward}"


def test_the_layers_are_the_subpackages():
    for sub in ("sources", "analysis", "outputs"):
        assert (PACKAGE / sub / "__init__.py").is_file()
    assert {p.stem for p in PACKAGE.glob("*.py")} == FOUNDATIONS | {
        "__init__",
        "__main__",
        "stages",
        "prepare",
        "produce",
        "cli",
        "docs",
    }


def test_the_checker_sees_an_upward_import():
    # The check reads relative imports inside functions too: a module of sources importing
    # analysis is caught.
    bad = PACKAGE / "sources" / "_probe_upward.py"
    bad.write_text("def f():\n    from ..analysis import communes\n", encoding="utf-8")
    try:
        assert [layer(t) for _, t in imported(bad)] == ["analysis"]
    finally:
        bad.unlink()
