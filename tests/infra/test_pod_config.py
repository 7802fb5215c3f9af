"""Phase 3's pod keys: one pattern per workload (pod_keys), checked across keys, and the
connection arithmetic that counts every pod's pool on shard 1 (the phase-2 primary)."""

from __future__ import annotations

import pytest

from infra import topology
from infra.config import ConfigError, parse
from infra.config.keys import SCHEMA
from infra.topology import Platform


def settings(**values: str):
    return parse("staging", {"phase": "3", "dbInstanceClass": "db.t3.medium", **values}.get,
                 "us-east-1")  # fmt: skip


def test_every_workload_on_the_cluster_has_its_pod_keys() -> None:
    s = settings()
    eks = topology.running(s.features, Platform.EKS)
    assert sorted(s.pods) == sorted(svc.name for svc in eks)
    for svc in eks:
        assert {f"{svc.name}PodCpu", f"{svc.name}PodMemory"} <= set(SCHEMA.by_name)
        pool_keys = {f"{svc.name}DbPoolSize", f"{svc.name}DbMaxOverflow"} <= set(SCHEMA.by_name)
        assert pool_keys == bool(svc.database_endpoints(s.features)), svc.name
        assert SCHEMA.by_name[f"{svc.name}PodCpu"].phases == (3,)
    # Jaeger's store is single-writer: no replica keys, one pod.
    assert "tracingReplicas" not in SCHEMA.by_name and s.pods["tracing"].replicas == 1
    assert s.pods["sender"].max_replicas == 8 and s.pods["api"].cpu_target == 70


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("apiPodCpu", "10", ">= 50"),
        ("senderPodMemory", "32", ">= 64"),
        ("tracingStorage", "cassandra", "memory or badger"),
        ("tracingImage", "jaegertracing/jaeger:latest", "a version tag"),
        ("clientsMaxReplicas", "1", ">= clientsReplicas (2)"),
    ],
)
def test_bad_pod_values_are_refused(key: str, value: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings(**{key: value})
    assert err.value.key == key and allowed in err.value.allowed


def test_tracing_keeps_spans_on_a_volume_only_on_production_stacks() -> None:
    assert settings().workloads.tracing_storage == "memory"
    assert settings(
        production="true", dbMultiAz="true", cacheNodes="2"
    ).workloads.tracing_storage == ("badger")


def test_pools_on_shard_1_count_every_workload_that_reaches_a_shard() -> None:
    pools = settings().pools()
    assert [p.service for p in pools["primary"]] == [
        "web", "worker", "api", "clients", "campaigns", "sender"
    ]  # fmt: skip
    sender = next(p for p in pools["primary"] if p.service == "sender")
    assert (sender.tasks, sender.pool_size, sender.max_overflow) == (8, 4, 4)
    # 4 x 10 + 4 x 8 + 6 x 10 x 3 + 8 x 8 = 316 of db.t3.medium's ~382 usable connections.
    assert sum(p.connections for p in pools["primary"]) == 316
    with pytest.raises(ConfigError) as err:
        settings(senderMaxReplicas="20")
    assert err.value.key == "dbInstanceClass" and "sender 20 x (4+4)" in err.value.allowed
