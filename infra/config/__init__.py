"""Every `cold-reach:*` key, read once into frozen, validated settings.

The program never calls `pulumi.Config` anywhere else: a bad value or an
unknown key stops the run here, before any resource is declared, with one
message that names the key, the value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pulumi

from infra.config.keys import SCHEMA
from infra.config.schema import PROJECT, ConfigError, UnknownKeyError
from infra.config.settings import (
    CacheSettings,
    ClusterSettings,
    DatabaseSettings,
    EdgeSettings,
    MailSettings,
    NetworkSettings,
    ServiceSettings,
    Settings,
    build,
)

__all__ = [
    "PROJECT",
    "SCHEMA",
    "CacheSettings",
    "ClusterSettings",
    "ConfigError",
    "DatabaseSettings",
    "EdgeSettings",
    "MailSettings",
    "NetworkSettings",
    "ServiceSettings",
    "Settings",
    "UnknownKeyError",
    "load",
    "parse",
    "project_keys",
]


def project_keys(names: Iterable[str]) -> list[str]:
    """The `cold-reach:*` keys among fully qualified config names, without the prefix."""
    prefix = f"{PROJECT}:"
    return sorted(n[len(prefix) :] for n in names if n.startswith(prefix))


def parse(
    stack: str,
    get: Callable[[str], str | None],
    region: str | None,
    keys_set: Iterable[str] = (),
) -> Settings:
    """Builds `Settings` from a key -> raw string lookup (keys without the project prefix).

    `keys_set` names the keys the stack sets, so that an unknown one is refused.
    """
    SCHEMA.check_known(list(keys_set))
    return build(stack, region, SCHEMA.read(stack, get))


def load() -> Settings:
    """Reads the current stack's configuration; raises `pulumi.RunError` on a bad value.

    `RunError` is how a Pulumi program reports a user error: the CLI prints the
    message alone, without a Python traceback.
    """
    from pulumi.runtime import config as runtime_config

    cfg = pulumi.Config(PROJECT)
    aws = pulumi.Config("aws")
    keys_set = project_keys({**runtime_config.get_config_env(), **runtime_config.CONFIG.get()})
    try:
        settings = parse(pulumi.get_stack(), cfg.get, aws.get("region"), keys_set)
    except ConfigError as err:
        raise pulumi.RunError(str(err)) from None
    for name in SCHEMA.ignored_in(settings.phase, keys_set):
        phases = ", ".join(str(p) for p in SCHEMA.by_name[name].phases)
        pulumi.log.warn(
            f"{PROJECT}:{name} is set but changes nothing in phase {settings.phase} "
            f"(it acts in phase {phases})"
        )
    return settings
