"""The Cold Reach program: reads the stack's settings and builds its phase."""

from __future__ import annotations

import pulumi

from infra import config, phase1


def main() -> None:
    settings = config.load()
    if settings.phase == 1:
        outputs = phase1.build(settings).outputs()
    else:
        raise pulumi.RunError(
            f"cold-reach:phase = {settings.phase}: only phase 1 is implemented in this version"
        )
    for key, value in outputs.items():
        pulumi.export(key, value)
