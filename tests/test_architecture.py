"""Imports point down: adapters -> services -> store -> core; adapters never import each other."""

import ast
import sys
from pathlib import Path

BOT = Path(__file__).resolve().parents[1] / "bot"
ADAPTERS = {"slack", "ingest", "scheduler"}
ENTRY_POINTS = {"cli", "shell", "server"}  # composition roots and their front-ends


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(package: str):
    for path in sorted((BOT / package).rglob("*.py")):
        yield path, imports_of(path)


def bot_parts(names: set[str]) -> set[str]:
    return {n.split(".")[1] for n in names if n.startswith("bot.") and n.count(".") >= 1}


def test_core_uses_only_the_standard_library_and_itself():
    for path, names in modules("core"):
        for name in names:
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or name.startswith("bot.core") or top == "__future__", f"{path.name} imports {name}"


def test_store_does_not_reach_up_into_services_or_adapters():
    for path, names in modules("store"):
        assert not bot_parts(names) & {"services", *ADAPTERS, *ENTRY_POINTS, "runtime"}, f"{path.name}: {names}"


def test_services_do_not_import_adapters():
    for path, names in modules("services"):
        assert not bot_parts(names) & {*ADAPTERS, *ENTRY_POINTS}, f"{path.name}: {bot_parts(names)}"


def test_adapters_do_not_import_each_other():
    for adapter in ADAPTERS:
        for path, names in modules(adapter):
            others = bot_parts(names) & (ADAPTERS - {adapter} | ENTRY_POINTS)
            assert not others, f"{adapter}/{path.name} imports {others}"
