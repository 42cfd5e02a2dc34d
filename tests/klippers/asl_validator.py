"""Run the npm ``asl-validator`` (offline) on a state machine definition.

The validator lives in the git-ignored ``.cache/node`` folder of the repository. When it is
missing and npm is available it is installed there (pinned). Without node/npm the tests that
need it are skipped locally, but fail under ``CI=true``: CI must always validate.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ASL_VALIDATOR_VERSION = "4.0.0"
REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_PREFIX = REPO_ROOT / ".cache" / "node"
VALIDATOR_BIN = NODE_PREFIX / "node_modules" / ".bin" / "asl-validator"
INSTALL_COMMAND = (
    "npm",
    "install",
    "--no-audit",
    "--no-fund",
    "--prefix",
    str(NODE_PREFIX),
    f"asl-validator@{ASL_VALIDATOR_VERSION}",
)


@dataclass(frozen=True)
class Verdict:
    """The validator's exit status and its messages."""

    valid: bool
    output: str


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"asl-validator is required in CI: {reason}")
    pytest.skip(reason)


def find_validator() -> Path:
    """Return the validator's executable, installing it with npm if needed."""
    if VALIDATOR_BIN.exists() and shutil.which("node"):
        return VALIDATOR_BIN
    if not (shutil.which("node") and shutil.which("npm")):
        _unavailable("node/npm not found; install them to validate the ASL definition")
    subprocess.run(INSTALL_COMMAND, check=True, capture_output=True, timeout=300)
    if not VALIDATOR_BIN.exists():
        _unavailable(f"npm did not install {VALIDATOR_BIN}")
    return VALIDATOR_BIN


def validate(validator: Path, definition: dict[str, Any], tmp_path: Path) -> Verdict:
    """Validate ``definition`` (written to a file under ``tmp_path``)."""
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(definition), encoding="utf-8")
    result = subprocess.run(
        [str(validator), "--json-path", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(f"asl-validator crashed ({result.returncode}): {result.stderr}")
    return Verdict(result.returncode == 0, result.stdout + result.stderr)
