"""Offline evaluations of the real program for the policy tests, memoised per session."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from coldreach.evaluation import evaluate_stack
from coldreach.runtime import Deployment

_cache: dict[str, Deployment] = {}


def deployment(stack: str, phase: int | None = None, **overrides: str) -> Deployment:
    """The program for `stack` (short override keys), evaluated once per session.

    Callers that change the result must copy it first (`copy.deepcopy`)."""
    key = json.dumps([stack, phase, sorted(overrides.items())])
    if key not in _cache:
        full = {(k if ":" in k else f"cold-reach:{k}"): v for k, v in overrides.items()}
        _cache[key] = evaluate_stack(stack, phase, overrides=full)
    return _cache[key]


@pytest.fixture(scope="session")
def program() -> Callable[..., Deployment]:
    """`program(stack, phase=None, **short_overrides)` -> the memoised deployment."""
    return deployment
