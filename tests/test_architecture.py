"""The import graph: media <- asr/selection <- jobs <- engines (local, cloud) <- cli; infra
imports only the pure modules.

Every ``import`` statement counts, including the lazy ones inside functions.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PURE = ("klippers.contract", "klippers.aws", "klippers.statemachine")

# Lower rank never imports higher rank.
RANKS = {
    "klipmedia": 0,
    "klippers": 1,
    **dict.fromkeys(PURE, 1),
    "klippers.storage": 2,
    "klippers.asr": 3,
    "klippers.selection": 3,
    "klippers.jobs": 4,
    "klippers.parent": 5,
    "klippers.child": 5,
    "klippers.shard": 5,
    "klippers.local": 5,
    "klippers.gallery": 5,
    "klippers.cloud": 5,
    "klippers.cli": 6,
}
# Modules of the same rank that must not import each other (engines are independent).
APART = {("klippers.local", "klippers.cloud"), ("klippers.cloud", "klippers.local")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[str]:
    """Absolute module names ``path`` imports (relative imports are not used here)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _home(module: str) -> str | None:
    """The entry of :data:`RANKS` that ``module`` belongs to, if any."""
    candidates = [key for key in RANKS if module == key or module.startswith(f"{key}.")]
    return max(candidates, key=len, default=None)


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    unplaced = [
        _module_name(p) for p in _sources("klipmedia", "klippers") if _home(_module_name(p)) is None
    ]
    assert unplaced == [], "add these to RANKS"


@pytest.mark.parametrize("path", _sources("klipmedia", "klippers"), ids=_module_name)
def test_imports_point_one_way(path: Path) -> None:
    here = _home(_module_name(path))
    assert here is not None
    wrong = []
    for target in _imports(path):
        there = _home(target)
        if there is None or there == here:
            continue
        if RANKS[there] > RANKS[here] or (here, there) in APART:
            wrong.append(target)
    assert wrong == [], f"{here} (rank {RANKS[here]}) must not import {wrong}"


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_use_only_the_standard_library(module: str) -> None:
    path = REPO / Path(*module.split(".")).with_suffix(".py")
    outside = {
        name.split(".")[0]
        for name in _imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names
        and not any(name == p or name.startswith(f"{p}.") for p in PURE)
        and name not in ("klippers",)
    }
    assert outside == set()


def test_infra_sources_import_only_pure_klippers_modules() -> None:
    for path in _sources("infra"):
        used = {name for name in _imports(path) if name.split(".")[0] == "klippers"}
        allowed = {"klippers", *PURE}
        impure = {n for n in used if not any(n == a or n.startswith(f"{a}.") for a in PURE)}
        assert impure <= allowed, f"{path.relative_to(REPO)} imports {sorted(impure - allowed)}"


_LOAD_INFRA = """
import ast, json, sys
sys.path.insert(0, "infra")
import klippers_infra
tree = ast.parse(open("infra/__main__.py", encoding="utf-8").read())
for node in tree.body:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        exec(compile(ast.Module([node], []), "infra/__main__.py", "exec"))
print(json.dumps(sorted(sys.modules)))
"""


def test_the_pulumi_program_loads_no_client_cli_or_media_code() -> None:
    """What the program's imports pull in, transitively, in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_INFRA],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    loaded = set(json.loads(out))
    klippers = {m for m in loaded if m == "klippers" or m.startswith("klippers.")}
    assert klippers == {"klippers", *PURE}
    forbidden = {"boto3", "botocore", "click", "av", "klipmedia"}
    assert loaded & forbidden == set()
