"""The one way to evaluate a stack: its config, at a phase, against a backend, once.

`plan`, `cost`, `promote` and `local` all start here; what they compute from the
result (prices, policy findings, a diff between phases) takes the `Deployment`
and never runs the program again.
"""

from __future__ import annotations

from pathlib import Path

from coldreach import stacks
from coldreach.runtime import Backend, Deployment, EchoBackend, evaluate


def evaluate_stack(
    stack: str,
    phase: int | None = None,
    *,
    root: Path | None = None,
    backend: Backend | None = None,
    overrides: dict[str, str] | None = None,
) -> Deployment:
    """Evaluates the program for `stack` (optionally at another phase or with extra config).

    `overrides` take fully qualified keys (`cold-reach:dbInstanceClass`). The
    backend defaults to echo. Raises `stacks.StackError` for a missing stack file
    and `ProgramError` for a value the program refuses.
    """
    from infra.program import main

    cfg = stacks.load(root or stacks.find_root(), stack).with_phase(phase)
    config = {**cfg.config, **(overrides or {})}
    region = config.get("aws:region") or "us-east-1"
    return evaluate(
        main,
        project=cfg.project,
        stack=stack,
        config=config,
        secret_keys=cfg.secret_keys,
        backend=backend or EchoBackend(region=region),
    )


def phase_of(deployment: Deployment) -> int:
    return int(deployment.output("phase"))
