"""The code stays readable: no function over 50 lines, no module over 300, in service/ and model_export/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(p for d in ("service", "model_export") for p in (ROOT / d).rglob("*.py"))
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50


def functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef)
    return [node for node in ast.walk(tree) if isinstance(node, kinds)]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_and_function_sizes(path: Path) -> None:
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES, f"{path.name}: split this module"
    for function in functions(ast.parse(source)):
        assert function.end_lineno is not None
        length = function.end_lineno - function.lineno + 1
        assert length <= MAX_FUNCTION_LINES, (
            f"{path.name}:{function.lineno} {function.name}: {length} lines"
        )


def test_the_check_sees_the_code() -> None:
    assert len(MODULES) > 30
    assert any(path.name == "predict.py" for path in MODULES)
