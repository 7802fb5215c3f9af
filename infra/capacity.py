"""How many database connections the app may open, and how many the database accepts.

RDS for PostgreSQL sets `max_connections` to LEAST(DBInstanceClassMemory/9531392, 5000)
(AWS RDS user guide, CHAP_Limits). `DBInstanceClassMemory` is the class memory
less what the OS and RDS keep, and measured values come out at 88-97 % of the
nominal figure, so the program plans with 85 % of nominal and keeps the rest
for superuser slots, migrations and a person with psql.
"""

from __future__ import annotations

from dataclasses import dataclass

BYTES_PER_CONNECTION = 9_531_392
USABLE_SHARE = 0.85

# Memory (GiB) of the RDS classes a stack is likely to use.
CLASS_MEMORY_GIB: dict[str, float] = {
    "db.t3.micro": 1,
    "db.t4g.micro": 1,
    "db.t3.small": 2,
    "db.t4g.small": 2,
    "db.t3.medium": 4,
    "db.t4g.medium": 4,
    "db.t3.large": 8,
    "db.t4g.large": 8,
    "db.m5.large": 8,
    "db.m6g.large": 8,
    "db.m6i.large": 8,
    "db.m7g.large": 8,
    "db.m6g.xlarge": 16,
    "db.m7g.xlarge": 16,
    "db.r6g.large": 16,
    "db.r7g.large": 16,
    "db.r6g.xlarge": 32,
    "db.r7g.xlarge": 32,
}


def max_connections(instance_class: str) -> int | None:
    """The nominal `max_connections` of a class, or None for a class not in the table."""
    memory = CLASS_MEMORY_GIB.get(instance_class)
    if memory is None:
        return None
    return min(int(memory * 2**30 // BYTES_PER_CONNECTION), 5000)


def usable_connections(instance_class: str) -> int | None:
    nominal = max_connections(instance_class)
    return None if nominal is None else int(nominal * USABLE_SHARE)


@dataclass(frozen=True)
class Pool:
    """Connections one service may hold on one database at its largest."""

    service: str
    tasks: int
    pool_size: int
    max_overflow: int

    @property
    def connections(self) -> int:
        return self.tasks * (self.pool_size + self.max_overflow)
