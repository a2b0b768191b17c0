"""ruff and mypy stay clean (the configuration and the reason for each ignore are in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "cmd",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_tool_is_clean(cmd):
    if shutil.which(cmd[0]) is None and shutil.which(cmd[0], path=str(Path(sys.executable).parent)) is None:
        pytest.skip(f"{cmd[0]} is not installed (pip install -e '.[test]')")
    exe = shutil.which(cmd[0], path=str(Path(sys.executable).parent)) or cmd[0]
    proc = subprocess.run([exe, *cmd[1:]], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
