"""The library stays independent of the web app: no module outside assistant/ui/ imports it or Gradio."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "assistant"
FORBIDDEN = ("assistant.ui", "gradio", "gradio_client")


def package_of(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])


def imported_modules(source: str, package: str) -> set[str]:
    """Absolute names of every module the source imports (relative imports resolved against the package)."""
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in {
            "import_module", "__import__"
        }:
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def is_forbidden(module: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in FORBIDDEN)


def library_files() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if (PACKAGE / "ui") not in p.parents]


def test_the_checker_sees_imports_of_every_form() -> None:
    source = (
        "import gradio as gr\nfrom ..ui import common\nfrom assistant.ui.render import esc\n"
        "def later():\n    import importlib\n    importlib.import_module('gradio_client')\n"
    )
    names = imported_modules(source, "assistant.dialogue")
    assert {"gradio", "assistant.ui", "assistant.ui.common", "assistant.ui.render", "gradio_client"} <= names
    assert all(is_forbidden(name) for name in ("gradio", "assistant.ui.common", "gradio_client.utils"))
    assert not is_forbidden("assistant.uikit") and not is_forbidden("gradiometer")


def test_no_library_module_imports_the_web_app_or_gradio() -> None:
    files = library_files()
    assert any(p.name == "accounts.py" and p.parent == PACKAGE for p in files), "accounts are library code"
    offenders = {
        str(path.relative_to(PACKAGE.parent)): sorted(
            m for m in imported_modules(path.read_text(encoding="utf-8"), package_of(path)) if is_forbidden(m)
        )
        for path in files
    }
    assert {path: modules for path, modules in offenders.items() if modules} == {}
