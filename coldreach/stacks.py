"""Reading the project's stack files (`Pulumi.<stack>.yaml`) the way the Pulumi CLI does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROJECT_FILE = "Pulumi.yaml"


class StackError(Exception):
    """A stack or project file is missing or malformed."""


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    config: dict[str, str]
    """Fully qualified keys (`cold-reach:phase`, `aws:region`) to string values."""
    secret_keys: list[str]

    @property
    def region(self) -> str | None:
        return self.config.get("aws:region")

    @property
    def phase(self) -> int:
        """`cold-reach:phase`, read and checked as the program reads it (infra/config)."""
        return int(self.values()["phase"])

    def values(self) -> dict[str, Any]:
        """Every `cold-reach:*` key, read by its declaration, defaults filled in.

        Raises `StackError` with the program's own message for a value it refuses,
        so every command rejects `phase: two` alike, before evaluating anything.
        """
        from infra.config import SCHEMA, ConfigError

        try:
            return dict(
                SCHEMA.read(self.stack, lambda key: self.config.get(f"{self.project}:{key}"))
            )
        except ConfigError as err:
            raise StackError(str(err)) from None

    def with_phase(self, phase: int | None) -> StackConfig:
        if phase is None:
            return self
        config = dict(self.config)
        config[f"{self.project}:phase"] = str(phase)
        return StackConfig(self.project, self.stack, config, self.secret_keys)


def find_root(start: Path | None = None) -> Path:
    """The directory holding Pulumi.yaml: the working directory or one of its parents,
    else the checkout this package was installed from."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents, Path(__file__).resolve().parents[1]):
        if (candidate / PROJECT_FILE).is_file():
            return candidate
    raise StackError(f"no {PROJECT_FILE} found in {here} or its parents")


def available(root: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def _as_config_string(value: Any) -> str:
    # The CLI hands structured values to programs as JSON, scalars as text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def load(root: Path, stack: str) -> StackConfig:
    project_doc = yaml.safe_load((root / PROJECT_FILE).read_text())
    project = str(project_doc["name"])
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        names = ", ".join(available(root)) or "none"
        raise StackError(f"no stack file {path.name} in {root} (stacks: {names})")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise StackError(f"{path.name} is not valid YAML: {err}") from None
    raw = doc.get("config") or {}
    if not isinstance(raw, dict):
        raise StackError(f"{path.name}: 'config' must be a mapping")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in raw.items():
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            # Encrypted with the stack's secrets provider: only the CLI can
            # decrypt it. Offline runs see a placeholder, still marked secret.
            config[full] = f"offline-placeholder-for-{full}"
            secret_keys.append(full)
        else:
            config[full] = _as_config_string(value)
    return StackConfig(project, stack, config, secret_keys)
