"""ARCHITECTURE.md's dependency direction, checked on the import graph of the package's source.

cli/serve -> whisper/kokoro -> encoders/vocoders, loading, convert -> coreml, store, cpu, audio ->
native, config, errors, options. Every import counts, also one inside a function, so a later
change cannot quietly undo the layout.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "python" / "mlx_audio_coreml"
MODELS = {"whisper", "kokoro"}
APPS = {"cli", "serve"}
GENERIC = {"coreml", "cpu", "loading", "store", "audio", "native", "encoders", "vocoders", "vad"}
BOTTOM = {"config", "errors", "options", "_version", "progress", "cancel", "info"}
# native/ implements the apple runtime; it shares the runtime interface's plain data types
# (TensorSpec, ModelDescription, LoadStage...) with coreml/runtime.py rather than owning a copy.
ALLOWED = {("native", "coreml.runtime")}


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def _imports(path: Path) -> set[str]:
    """Package-relative names of every module `path` imports (absolute or relative), e.g. 'whisper.model'."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("mlx_audio_coreml.") for a in node.names if a.name.startswith("mlx_audio_coreml.")
            }
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and node.module.startswith("mlx_audio_coreml"):
                target = node.module.removeprefix("mlx_audio_coreml").lstrip(".")
            else:
                continue
            if target:
                found.add(target)
            else:  # `from . import x` at the top: each name is a module or a package attribute
                found |= {a.name for a in node.names}
            if target in {"", *MODELS, *APPS, *GENERIC}:
                found |= {f"{target}.{a.name}".lstrip(".") for a in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    return {
        ".".join(p.relative_to(PACKAGE).with_suffix("").parts): _imports(p)
        for p in PACKAGE.rglob("*.py")
        if "_proto" not in p.parts
    }


def _violations(sources: set[str], forbidden: set[str]) -> list[str]:
    bad = []
    for module, imported in sorted(_graph().items()):
        if _top(module) not in sources:
            continue
        for target in sorted(imported):
            if _top(target) in forbidden and _top(target) != _top(module):
                if not any(module.startswith(a) and target.startswith(b) for a, b in ALLOWED):
                    bad.append(f"{module} imports {target}")
    return bad


def test_graph_sees_relative_and_function_level_imports():
    graph = _graph()
    assert "cpu.host_math" in graph["whisper.model"]  # `from ..cpu import host_math`
    assert any(t.startswith("whisper") for t in graph["cli.transcribe"])


def test_generic_layers_never_import_a_model_or_an_app():
    assert _violations(GENERIC, MODELS | APPS | {"convert"}) == []


def test_the_bottom_layer_imports_nothing_above_it():
    assert _violations(BOTTOM, MODELS | APPS | GENERIC | {"convert", "loading"}) == []


@pytest.mark.parametrize(("model", "other"), [("whisper", "kokoro"), ("kokoro", "whisper")])
def test_the_two_models_never_import_each_other(model, other):
    assert _violations({model}, {other}) == []


def test_only_apps_import_apps():
    assert _violations(MODELS | GENERIC | BOTTOM | {"convert"}, APPS) == []
