"""The front end's sign-in and origins reach the HTTP API as plain settings, checked first."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from coldreach.runtime import Deployment
from infra.config import ConfigError, parse

OIDC = {
    "oidcIssuer": "https://login.example.com/",
    "oidcAudience": "cold-reach-api",
    "oidcJwksUrl": "https://login.example.com/.well-known/jwks.json",
    "corsOrigins": "https://app.example.com,https://admin.example.com",
}


def _environment(d: Deployment, service: str) -> dict[str, str]:
    td = next(
        t for t in d.of_type("aws:ecs/taskDefinition:TaskDefinition")
        if t.get("family").endswith(f"-{service}")
    )  # fmt: skip
    return {
        e["name"]: e["value"] for e in json.loads(td.get("containerDefinitions"))[0]["environment"]
    }


def test_oidc_and_origins_reach_the_api_only(program: Callable[..., Deployment]) -> None:
    d = program("staging", **OIDC)
    web, worker = _environment(d, "web"), _environment(d, "worker")
    assert {k: web[k] for k in web if k.startswith(("OIDC_", "CORS_"))} == {
        "OIDC_ISSUER": "https://login.example.com/",
        "OIDC_AUDIENCE": "cold-reach-api",
        "OIDC_JWKS_URL": "https://login.example.com/.well-known/jwks.json",
        "OIDC_WORKSPACE_CLAIM": "workspace",
        "CORS_ORIGINS": "https://app.example.com,https://admin.example.com",
    }
    assert not any(k.startswith(("OIDC_", "CORS_")) for k in worker)
    # Unset, the API accepts API keys only and no browser origin.
    assert not any(
        k.startswith(("OIDC_", "CORS_")) for k in _environment(program("staging"), "web")
    )


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"oidcIssuer": "https://login.example.com/"}, "only together with oidcAudience"),
        ({"oidcJwksUrl": "http://login.example.com/jwks"}, "an https URL"),
        ({"corsOrigins": "*"}, "comma-separated https origins"),
    ],
)
def test_incomplete_or_open_settings_are_refused(values: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse("dev", values.get, "us-east-1")
