"""`make demo` deploys the phase the stack file says unless PHASE is given, and
`PROMOTE=1` rehearses the promotion and verifies with the baseline (read from `make -n`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make on PATH")


def recipe(*variables: str) -> str:
    done = subprocess.run(
        ["make", "-n", "demo", *variables], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout


def branch(text: str, promote: bool) -> str:
    """The deploy command of one branch of the recipe's `if`."""
    deploys = re.findall(r'deploy="([^"]*)"', text)
    assert len(deploys) == 2, text
    return deploys[0] if promote else deploys[1]


def test_without_phase_the_stack_file_decides() -> None:
    text = recipe()
    assert branch(text, promote=False).split() == ["local", "up", "--stack", "dev"]
    assert "--phase" not in text and "--from" not in text
    assert 'if [ -n "" ]' in text  # PROMOTE unset: the `local up` branch runs


def test_phase_and_stack_are_passed_through() -> None:
    text = recipe("PHASE=2", "STACK=prod")
    assert branch(text, promote=False).split() == ["local", "up", "--stack", "prod", "--phase", "2"]


def test_promote_rehearses_and_verifies_with_the_baseline() -> None:
    text = recipe("PROMOTE=1")
    assert 'if [ -n "1" ]' in text
    assert branch(text, promote=True).split() == [
        "local", "rehearse", "--stack", "dev", "--baseline", "$base",
    ]  # fmt: skip
    assert 'kept="--kept $base"' in text
    assert "coldreach verify --outputs $out --endpoint-url http://127.0.0.1:$port $kept" in text


def test_phase_3_walks_the_stages_from_phase_2_on_staging() -> None:
    text = recipe("PHASE=3")
    assert '[ "3" = 3 ]' in text  # the rehearsal branch runs
    assert branch(text, promote=True).split() == [
        "local", "rehearse", "--stack", "staging", "--from", "2", "--baseline", "$base",
    ]  # fmt: skip
    assert branch(recipe("PHASE=3", "STACK=prod"), promote=True).split()[2:6] == [
        "--stack", "prod", "--from", "2",
    ]  # fmt: skip
