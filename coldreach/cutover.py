"""The route 2 -> 3 as data: phase 3 beside phase 2, data onto shards, traffic moved in
steps, the Celery queue drained, then phase 2's ECS services, Celery and Redis retired.

No stage may lose an accepted email, send one twice or lose a row: the phase-2
database stays (shard 1, same URN), both fleets may send at once because a send
is claimed in the database first (app/README.md, Kafka delivery), and Redis goes
only once the cluster takes every request and the Celery queue is empty.
Runbook: docs/promotion-3.md.
"""

from __future__ import annotations

from coldreach.hints import coldreach
from coldreach.stages import Fact, Route, Stage, StageContext

SHARDS_VERIFIED = Fact(
    "shards-verified",
    "`uv run coldreach-app migrate-shards --source URL --shard URL --shard URL` exited 0 "
    "with no `mismatch:` line, the phase-2 writers stopped for the run (docs/sharding.md)",
)


def held(percent: int) -> Fact:
    return Fact(
        f"held-{percent}",
        f"at {percent}% for 30 minutes: the cluster's target group has a 5xx rate under 1% "
        "and p99 latency under 1 s (CloudWatch, AWS/ApplicationELB, HTTPCode_Target_5XX_Count "
        "and TargetResponseTime by target group), no pod restarting "
        "(kubectl get pods -n cold-reach)",
    )


CELERY_DRAINED = Fact(
    "celery-drained",
    "the cluster has taken 100% for at least CELERY_VISIBILITY_TIMEOUT (1 hour: an "
    "unacknowledged task would have come back by then), the ECS worker's log shows no task "
    "received in the last 15 minutes and StuckSendingEmails is 0 (docs/promotion-3.md, "
    "stage 6)",
)


def _traffic(context: StageContext) -> str:
    config = context.config
    return config.config.get(f"{config.project}:eksTrafficPercent", "0")


def deployed_as_configured(context: StageContext) -> str | None:
    """With `--outputs`, the deployment must have caught up with the stack file: a stage run
    on a change not yet applied would skip a hold."""
    outputs = context.outputs
    if not outputs:
        return None
    if "eks_cluster_name" not in outputs:
        return (
            "the outputs show no cluster: stage 1 is in the stack file but not deployed yet "
            "(merge its pull request and let the deploy workflow run)"
        )
    live = str(outputs.get("eks_traffic_percent"))
    if live != _traffic(context):
        return (
            f"the outputs say the cluster takes {live}% while the stack file says "
            f"{_traffic(context)}%: deploy the stack file first"
        )
    return None


def all_traffic_on_cluster(context: StageContext) -> str | None:
    if _traffic(context) != "100":
        return (
            f"eksTrafficPercent is {_traffic(context)}: ECS retires only once the cluster "
            "takes 100% of the requests"
        )
    return None


RETIRED_STATEFUL = frozenset({"cache-redis", "cache-url", "cache-auth-token-secret"})
"""Redis (the Celery broker, empty by then) and the two secrets that reach it."""

VERIFY = coldreach("verify --stack STACK")

ROUTE = Route(
    source=2,
    target=3,
    stages=(
        Stage(
            name="phase 3 alongside",
            does=(
                "EKS, MSK and shard 2 created beside phase 2; the cluster's API gets 0% of "
                "the requests, ECS keeps serving; the database, Redis, ECR and S3 untouched"
            ),
            sets={"phase": "3", "eksTrafficPercent": "0"},
            verify=f"{VERIFY}; kubectl get nodes and pods ready; MSK cluster ACTIVE",
            rollback="set phase back to 2 and deploy: the new resources are deleted, nothing "
            "phase 2 had changes",
            watch="the deploy (25-40 min: EKS about 10, MSK 20-30); ECS 5xx stays flat",
        ),
        Stage(
            name="shards migrated",
            does="migrate-shards copies the phase-2 database onto the shards and verifies it",
            sets={},
            verify="migrate-shards exit 0; a second run copies nothing and verifies everything",
            rollback="the source is only read: restart the phase-2 writers; rerun after a fix "
            "(a killed run resumes)",
            needs=(SHARDS_VERIFIED,),
            watch="`mismatch:` lines and the exit status; about 5 s per 128 buckets",
        ),
        *(
            Stage(
                name=f"{percent}% to the cluster",
                does=f"the load balancer sends {percent}% of requests to the cluster's API "
                "(weighted target groups); its sends go through Kafka, ECS's through Celery",
                sets={"phase": "3", "eksTrafficPercent": str(percent)},
                verify=f"{VERIFY}; the cluster's target group healthy",
                rollback=f"set eksTrafficPercent back to {previous} and deploy (in place, "
                "a listener update)",
                checks=(deployed_as_configured,),
                needs=needs,
                watch="5xx rate and p99 latency per target group, Kafka consumer lag; hold "
                "30 minutes",
            )
            for percent, previous, needs in (
                (10, 0, (SHARDS_VERIFIED,)),
                (50, 10, (held(10),)),
                (100, 50, (held(50),)),
            )
        ),
        Stage(
            name="Celery drained",
            does="with every request on the cluster, nothing new enters Celery; the ECS "
            "worker finishes what is queued",
            sets={},
            verify="queue empty, every message of the last hour sent or failed, none twice",
            rollback="nothing to undo: move traffic back (eksTrafficPercent) if sends stall",
            needs=(CELERY_DRAINED,),
            watch="the worker's log going quiet; at least an hour after stage 5",
        ),
        Stage(
            name="retire ECS, Celery, Redis",
            does="removes the ECS services, the Celery worker, ElastiCache and its secrets "
            "(retired explicitly: " + ", ".join(sorted(RETIRED_STATEFUL)) + ")",
            sets={"phase": "3", "eksTrafficPercent": "100", "retireEcs": "true"},
            verify=f"{VERIFY}; outputs show no redis_endpoint; a test send end to end",
            rollback="set retireEcs false and deploy: ECS and an empty Redis come back; the "
            "queue never holds data by then",
            checks=(deployed_as_configured, all_traffic_on_cluster),
            needs=(CELERY_DRAINED,),
            retires=RETIRED_STATEFUL,
            watch="the deploy (about 10 min, Redis deletion the longest); API 5xx flat",
        ),
    ),
    runbook="docs/promotion-3.md",
    before={"eksTrafficPercent": "0", "retireEcs": "false"},
)
