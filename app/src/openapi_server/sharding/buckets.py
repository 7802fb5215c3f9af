"""Which bucket a client belongs to, and which shard holds each bucket.

A fixed number of buckets (1024) is mapped to shards; moving data means moving whole
buckets, never rehashing clients. The default map sends even buckets to shard 1 and
odd buckets to shard 2: with an even bucket count that is the seed's "hash even/odd"
rule, and it stays a table that can change bucket by bucket.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

BUCKETS = 1024

# Bucket states (directory `bucket_map.state`).
ACTIVE = "active"  # served by its shard
MOVING = "moving"  # being copied: reads go on, writes are refused (retryable)
STATES = (ACTIVE, MOVING)


def bucket_of(client_id: int) -> int:
    """The client's bucket: stable across processes and machines (never Python's hash())."""
    return zlib.crc32(str(client_id).encode()) % BUCKETS


def shard_name(index: int) -> str:
    """Shards are named by their 1-based position: `DB_SHARD_1` is shard "1"."""
    return str(index)


@dataclass(frozen=True)
class Placement:
    shard: str
    state: str = ACTIVE


@dataclass(frozen=True)
class ShardMap:
    """bucket -> (shard, state) for every bucket; rows absent from the directory take the
    default placement."""

    shard_names: tuple[str, ...]
    placements: Mapping[int, Placement] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.shard_names:
            raise ValueError("a shard map needs at least one shard")
        for bucket, placement in self.placements.items():
            if not 0 <= bucket < BUCKETS:
                raise ValueError(f"bucket {bucket} is outside 0..{BUCKETS - 1}")
            if placement.shard not in self.shard_names:
                raise ValueError(f"bucket {bucket} is mapped to unknown shard {placement.shard!r}")
            if placement.state not in STATES:
                raise ValueError(f"bucket {bucket} has unknown state {placement.state!r}")

    @classmethod
    def default(cls, shard_names: Iterable[str]) -> ShardMap:
        return cls(tuple(shard_names))

    def default_shard(self, bucket: int) -> str:
        """Round robin: with two shards, even buckets to shard 1 and odd ones to shard 2."""
        return self.shard_names[bucket % len(self.shard_names)]

    def placement(self, bucket: int) -> Placement:
        return self.placements.get(bucket) or Placement(self.default_shard(bucket))

    def shard_for(self, client_id: int) -> str:
        return self.placement(bucket_of(client_id)).shard

    def moved(self, bucket: int, shard: str, state: str = ACTIVE) -> ShardMap:
        """A copy of this map with one bucket placed elsewhere (or in another state)."""
        return ShardMap(self.shard_names, {**self.placements, bucket: Placement(shard, state)})

    def buckets_of(self, shard: str) -> list[int]:
        return [b for b in range(BUCKETS) if self.placement(b).shard == shard]
