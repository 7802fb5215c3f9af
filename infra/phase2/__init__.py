"""Phase 2 (~10,000 users): API and Celery worker in private subnets, a read replica, Redis.

Sending moves out of the API into a worker service fed through ElastiCache
Redis; the API reads lists from a replica. Everything of phase 1 is built by
`phase1.foundation` and `phase1.web_service` under the same names, reshaped by
the `Shape` below: a NAT, private subnets, the Celery backend. A stack on phase
1 is promoted by setting `cold-reach:phase` to 2 and running `pulumi up`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi

from components import firewall, iam
from components.cache import PORT as REDIS_PORT
from components.cache import Cache, CacheArgs
from components.service import BacklogMetric, FargateService, Scaling
from infra.config import Settings
from infra.phase1 import Foundation, Phase1, Shape, foundation, web_service

WORKER_COMMAND = ("python", "-m", "openapi_server.worker")
# The worker publishes the number of queued emails here; its autoscaling reads it.
BACKLOG_METRIC = "QueuedEmails"


@dataclass
class Phase2(Phase1):
    cache: Cache
    worker: FargateService

    def outputs(self) -> dict[str, pulumi.Input[object]]:
        db = self.foundation.database
        return {
            **super().outputs(),
            "db_replica_endpoint": db.replica.endpoint if db.replica else None,
            "db_replica_identifier": db.replica.identifier if db.replica else None,
            "redis_endpoint": self.cache.replication_group.primary_endpoint_address,
            "worker_service_name": self.worker.service.name,
        }


def backlog_namespace(s: Settings) -> str:
    return f"ColdReach/{s.stack}"


def worker_service(f: Foundation, shape: Shape, cache: Cache) -> FargateService:
    s = f.settings
    namespace = backlog_namespace(s)
    args = f.service_args(
        shape,
        cpu=s.worker_cpu,
        memory=s.worker_memory,
        count=s.worker_min_count,
        pool=(s.worker_db_pool_size, s.worker_db_max_overflow),
        environment={
            "WORKER_POOL": "threads",
            "WORKER_CONCURRENCY": str(s.worker_concurrency),
            "BACKLOG_METRIC_NAMESPACE": namespace,
        },
        permissions=[
            # PutMetricData has no resource-level permissions; the condition
            # keeps the worker to its own namespace.
            iam.allow(
                ["cloudwatch:PutMetricData"],
                ["*"],
                condition={"StringEquals": {"cloudwatch:namespace": namespace}},
            ),
        ],
    )
    worker = f.app_service(
        "worker",
        replace(
            args,
            command=WORKER_COMMAND,
            # The worker writes a heartbeat; nothing else probes it.
            health_command=("python", "-m", "openapi_server.healthcheck", "--worker"),
            scaling=Scaling(
                min_count=s.worker_min_count,
                max_count=s.worker_max_count,
                backlog=BacklogMetric(namespace, BACKLOG_METRIC, s.worker_backlog_target),
            ),
        ),
    )
    firewall.connect(worker.security_group, cache.security_group, REDIS_PORT, "Redis")
    return worker


def build(s: Settings) -> Phase2:
    shape = Shape(
        nat="per_az" if s.nat_per_az else "single",
        private_services=True,
        queue_backend="celery",
        read_replica=True,
        web_scaling=Scaling(s.web_desired_count, s.web_max_count, cpu_target=s.web_cpu_target),
    )
    f = foundation(s, shape)
    cache = Cache(
        "cache",
        CacheArgs(
            vpc_id=f.network.vpc.id,
            subnet_ids=f.network.private_subnet_ids,
            node_type=s.cache_node_type,
            nodes=s.cache_nodes,
            protect=s.protect,
        ),
    )
    replica = f.database.replica
    assert replica is not None  # read_replica=True above
    shape = replace(
        shape,
        environment={"DB_READ_HOST": replica.address},
        secrets={"REDIS_URL": cache.url.ref()},
    )
    web = web_service(f, shape)
    firewall.connect(web.security_group, cache.security_group, REDIS_PORT, "Redis")
    worker = worker_service(f, shape, cache)
    return Phase2(f, web, cache, worker)
