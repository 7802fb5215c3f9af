"""What each phase turns on: the seed's scaling table as data.

The program's layers read these switches; no layer asks "which phase is this".
Phases are cumulative: a stack promoted to the next phase keeps everything it
has under the same names, and the switches only add or reshape.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Queue = Literal["inline", "celery", "kafka"]


@dataclass(frozen=True)
class Features:
    users: str
    nat: bool
    """NAT gateway(s): one, or one per AZ with `natPerAz`."""
    private_compute: bool
    """Services in the private subnets without public IPs (needs the NAT to pull images)."""
    queue: Queue
    """Where the ECS services' background sends wait: in the API process, or Celery on Redis.
    Phase 3's cluster services always send through Kafka (`kafka`)."""
    replica: bool
    """A read replica of the primary database for list reads."""
    cache: bool
    """ElastiCache Redis (the Celery broker)."""
    autoscaling: bool
    """Services scale between their minimum and maximum counts."""
    ecs: bool = True
    """The ECS services of phases 1-2. Phase 3 runs them beside the cluster until the
    cutover is done, then `cold-reach:retireEcs` retires them (see `retired`)."""
    cluster: bool = False
    """EKS with Kubernetes workloads."""
    kafka: bool = False
    """MSK."""
    shards: bool = False
    """Sharded PostgreSQL (shard 1 is the phase-2 database)."""
    tracing: bool = False
    """OTLP tracing for every service."""

    def retired(self) -> Features:
        """Phase 3 after the cutover: no ECS services, so no Celery and no Redis."""
        if not self.cluster:
            raise ValueError("only a phase with the cluster can retire its ECS services")
        return replace(self, ecs=False, cache=False)

    def not_built(self) -> list[str]:
        """Switches this program cannot build yet, which the program refuses to deploy. Every
        switch of every phase is built today; a new switch is listed here until its layer
        exists."""
        pending: tuple[str, ...] = ()
        return [name for name in pending if getattr(self, name)]


PHASES: dict[int, Features] = {
    1: Features("~1,000", nat=False, private_compute=False, queue="inline", replica=False,
                cache=False, autoscaling=False),
    2: Features("~10,000", nat=True, private_compute=True, queue="celery", replica=True,
                cache=True, autoscaling=True),
    3: Features("100,000+", nat=True, private_compute=True, queue="celery", replica=True,
                cache=True, autoscaling=True, cluster=True, kafka=True, shards=True,
                tracing=True),
}  # fmt: skip


def of(phase: int) -> Features:
    return PHASES[phase]
