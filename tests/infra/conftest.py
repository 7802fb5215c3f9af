"""Offline evaluations of the real program, shared by the infra tests.

Each evaluation runs the whole program once (about a second), so every
stack/variant is evaluated once per session and the tests only read it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from deployment_helpers import CERT

from coldreach.evaluation import evaluate_stack
from coldreach.runtime import Deployment

_cache: dict[str, Deployment] = {}


def evaluate(stack: str, phase: int | None = None, **overrides: str) -> Deployment:
    """The program for `stack`, memoised per argument set; overrides use short keys."""
    key = json.dumps([stack, phase, sorted(overrides.items())])
    if key not in _cache:
        full = {(k if ":" in k else f"cold-reach:{k}"): v for k, v in overrides.items()}
        _cache[key] = evaluate_stack(stack, phase, overrides=full)
    return _cache[key]


@pytest.fixture(scope="session")
def program() -> Callable[..., Deployment]:
    return evaluate


@pytest.fixture(scope="session")
def dev() -> Deployment:
    return evaluate("dev")


@pytest.fixture(scope="session")
def dev_https_mail() -> Deployment:
    """dev with the optional features on: an ACM certificate and a sender domain."""
    return evaluate(
        "dev", certificateArn=CERT, senderDomain="mail.example.com", feedbackWebhook="true"
    )
