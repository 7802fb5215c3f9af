"""The README's generated sections: the topology of each phase and the table of config keys.

    uv run --frozen python -m infra.reference          # print them
    uv run --frozen python -m infra.reference --write  # rewrite them in README.md

A test fails when README.md and the declarations disagree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from infra import phases, topology
from infra.config import SCHEMA

README = Path(__file__).resolve().parents[1] / "README.md"


def topology_table() -> str:
    lines = ["| Phase | From | To | Port | What |", "|---|---|---|---|---|"]
    for number, features in phases.PHASES.items():
        if features.not_built():
            continue
        # As a new stack runs it: the master password rotates (cold-reach:dbIamAuth on).
        declared = topology.declare(features, rotation=True)
        for flow in declared.flows():
            row = (number, flow.source, flow.target, flow.port, flow.label)
            lines.append("| " + " | ".join(str(c) for c in row) + " |")
        for service in declared.services:
            if service.may_reach(features, topology.SES):
                lines.append(f"| {number} | {service.name} | SES | (IAM) | Sends mail |")
    return "\n".join(lines) + "\n"


SECTIONS = {"topology": topology_table, "config-keys": SCHEMA.markdown}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- generated:{name} -->\n)(.*?)(<!-- end generated:{name} -->)", re.DOTALL
    )


def section(text: str, name: str) -> str | None:
    match = _pattern(name).search(text)
    return match.group(2) if match else None


def render(text: str) -> str:
    for name, make in SECTIONS.items():
        text = _pattern(name).sub(lambda m, make=make: m.group(1) + make() + m.group(3), text)
    return text


if __name__ == "__main__":
    if "--write" in sys.argv:
        README.write_text(render(README.read_text()))
    else:
        for name, make in SECTIONS.items():
            print(f"<!-- generated:{name} -->\n{make()}<!-- end generated:{name} -->\n")
