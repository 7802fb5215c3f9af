"""Phase 3: clients spread over PostgreSQL shards by bucket, global data in a directory.

bucket_of / ShardMap (buckets.py), the directory database and id allocator
(directory.py), ShardRouter (router.py), cross-shard keyset lists (merge.py) and the
phase-2 to shards migration (migration.py, `coldreach-app migrate-shards`).
"""

from .buckets import ACTIVE, BUCKETS, MOVING, Placement, ShardMap, bucket_of
from .router import BucketMoving, ShardRouter

__all__ = [
    "ACTIVE",
    "BUCKETS",
    "MOVING",
    "BucketMoving",
    "Placement",
    "ShardMap",
    "ShardRouter",
    "bucket_of",
]
