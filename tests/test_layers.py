"""The layers of carscore, lowest first: a module imports only from its own
layer or the layers below (style.md). The library never imports Typer or Rich."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "carscore"

# lowest first; a module not listed here belongs to the layer of its package
LAYERS: list[tuple[str, set[str]]] = [
    (
        "reading rule-like files and the contract",
        {"errors", "numbers", "yamlpos", "yamlsafe", "yamlcache", "expr", "rulefile", "contract"},
    ),
    ("the rule language", {"compile", "functions", "countfunctions", "timeline", "kernels", "presentation", "rulemodel", "rulereaders", "ruleset"}),
    ("the engine", {"includes", "plan", "batches", "decisions", "combine", "engine"}),
    (
        "reading patient data",
        {"sources", "decoding", "csvfile", "headers", "csvlines", "csvroads", "csvread", "cells", "intake", "importer", "chunking", "parquetin"},
    ),
    ("assessment and results", {"assess", "chunked", "rulesources", "report", "jsontext", "cohort", "casefile", "compare"}),
    ("figures, the HTML report and the registry and CDISC exports", {"figures", "htmlreport", "export"}),
    ("the command line", {"cli"}),
]
UI = {"typer", "rich"}


def layer_of(module: str) -> int:
    """carscore.importer.fhir.codes -> the layer of 'importer'."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else parts[0]
    for i, (_, names) in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module} is in no layer: add it to tests/test_layers.py")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(relative.parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports_of(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                base = module.split(".")[: -node.level] if not path.name == "__init__.py" else module.split(".")
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            if target == "carscore":  # from carscore import functions (a module), __version__ (not)
                out |= {
                    f"carscore.{alias.name}"
                    for alias in node.names
                    if (PACKAGE / f"{alias.name}.py").exists() or (PACKAGE / alias.name).is_dir()
                }
    return out


def test_every_module_imports_only_downwards() -> None:
    wrong = []
    for module, path in modules().items():
        if module == "carscore":
            continue
        mine = layer_of(module)
        for target in imports_of(path, module):
            if target.startswith("carscore.") and layer_of(target) > mine:
                wrong.append(f"{module} ({LAYERS[mine][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    assert not wrong, "\n".join(wrong)


def test_the_library_imports_neither_typer_nor_rich() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, path in modules().items()
        if not module.startswith("carscore.cli")
        for target in imports_of(path, module)
        if target.split(".")[0] in UI
    ]
    assert not wrong, "\n".join(wrong)


def test_the_layer_check_sees_an_upward_import(tmp_path: Path) -> None:
    # the check itself can fail: an engine module reaching up to the CLI
    fake = tmp_path / "engine.py"
    fake.write_text("from carscore.cli.app import app\n", encoding="utf-8")
    targets = imports_of(fake, "carscore.engine")
    assert any(layer_of(t) > layer_of("carscore.engine") for t in targets if t.startswith("carscore."))
