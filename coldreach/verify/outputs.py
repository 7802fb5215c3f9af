"""The stack outputs verify starts from, and the region they live in."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from coldreach import stacks
from coldreach.errors import UserError
from coldreach.hints import coldreach


def outputs_from_pulumi(stack: str) -> dict[str, Any]:
    """`pulumi stack output --json --show-secrets --stack STACK`."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise UserError(
            "the pulumi CLI is not on PATH, so the outputs of stack "
            f"{stack!r} cannot be read; pass them as a file with --outputs FILE "
            f"(e.g. from `{coldreach('local up --stack STACK --outputs FILE')}`)"
        )
    done = subprocess.run(
        [pulumi, "stack", "output", "--json", "--show-secrets", "--stack", stack],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise UserError(f"pulumi stack output --stack {stack} failed: {done.stderr.strip()}")
    return _as_outputs(done.stdout, f"pulumi stack output --stack {stack}")


def outputs_from_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as err:
        raise UserError(f"cannot read the outputs file {path}: {err.strerror}") from None
    return _as_outputs(text, str(path))


def _as_outputs(text: str, source: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{source} is not JSON: {err}") from None
    if not isinstance(doc, dict):
        raise UserError(f"{source}: expected a JSON object of stack outputs")
    missing = [k for k in ("vpc_id", "cluster_name", "db_identifier") if not doc.get(k)]
    if missing:
        raise UserError(f"{source}: missing stack outputs {', '.join(missing)}")
    return doc


def region_of(outputs: dict[str, Any], explicit: str | None, stack: str | None) -> str:
    """--region, else the stack's aws:region, else the region in the outputs' ARNs,
    else the environment."""
    if explicit:
        return explicit
    if stack:
        try:
            configured = stacks.load(stacks.find_root(), stack).region
        except stacks.StackError:
            configured = None
        if configured:
            return configured
    for value in outputs.values():
        match = re.match(r"^arn:aws[a-z-]*:[a-z0-9-]+:([a-z0-9-]+):\d{12}:", str(value))
        if match and match.group(1):
            return match.group(1)
    env = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if env:
        return env
    raise UserError("no region: pass --region")
