"""The Cold Reach program: reads the stack's settings and builds its phase."""

from __future__ import annotations

import pulumi

from infra import capacity, config, phase1, phase2


def main() -> None:
    settings = config.load()
    for instance_class in {settings.db_instance_class, settings.replica_class}:
        if capacity.max_connections(instance_class) is None:
            pulumi.log.warn(
                f"{instance_class}: max_connections unknown to infra/capacity.py, so the "
                "connection pools were not checked against it"
            )
    if settings.https and settings.public_hostname is None:
        pulumi.log.warn(
            "cold-reach:certificateArn is set but cold-reach:publicHostname is not: no "
            "certificate can match the load balancer's own name, so browsers and SNS will "
            "refuse https://<alb>. Set publicHostname and point its DNS record at the ALB."
        )
    if settings.phase == 1:
        outputs = phase1.build(settings).outputs()
    elif settings.phase == 2:
        outputs = phase2.build(settings).outputs()
    else:
        raise pulumi.RunError(
            f"cold-reach:phase = {settings.phase}: phase 3 is not built yet (phases 1 and 2 are)"
        )
    for key, value in outputs.items():
        pulumi.export(key, value)
