"""Phase 3's bill over phase 2's, worked out by hand: MSK brokers and storage, the shards
beyond the first, and the cluster (control plane, nodes, the key sealing its secrets;
tests/cost/test_cluster_cost.py prices its rows one by one). Each stack's phase-2 bill is
worked out in tests/cost/test_cost.py."""

from __future__ import annotations

import pytest

from coldreach import cost
from coldreach.evaluation import evaluate_stack

H = 730
CLUSTER = {"eks-cluster": round(0.10 * H, 2), "eks-secrets": 1.00}
"""The control plane (standard support) and its secrets key, the same on every stack."""


@pytest.fixture(scope="module")
def table() -> cost.PriceTable:
    return cost.PriceTable.load()


def _added(stack: str, table: cost.PriceTable, **overrides: str) -> dict[str, float]:
    """What phase 3 adds to the stack's bill, by resource (only what phase 2 lacks)."""
    full = {f"cold-reach:{k}": v for k, v in overrides.items()}
    two = cost.estimate(evaluate_stack(stack, 2), table).by_resource()
    three = cost.estimate(evaluate_stack(stack, 3, overrides=full), table)
    assert not three.missing_prices
    return {
        name: usd
        for name, usd in three.by_resource().items()
        if round(usd - two.get(name, 0.0), 2) != 0
    }


def test_staging_phase3_data_by_hand(table: cost.PriceTable) -> None:
    added = _added("staging", table)
    brokers = 2 * 0.21 * H  # 2 x kafka.m5.large
    storage = 2 * 20 * 0.10  # 20 GB per broker
    shard2 = 0.072 * H + 20 * 0.115  # db.t3.medium single-AZ, like shard 1, 20 GB gp3
    nodes = 2 * 0.096 * H + 2 * 20 * 0.08  # 2 x m6i.large, 20 GB gp3 roots
    assert added == {
        "kafka-cluster": round(brokers + storage, 2),
        "kafka-key": 1.00,
        "shard2-instance": round(shard2, 2),
        "shard2-credentials": 0.40,
        **CLUSTER,
        "eks-nodes-group": round(nodes, 2),
    }
    data = brokers + storage + 1.00 + shard2 + 0.40
    assert round(data, 2) == 366.86
    assert round(sum(added.values()), 2) == round(data + 74.00 + nodes, 2) == 584.22


def test_prod_phase3_data_by_hand(table: cost.PriceTable) -> None:
    added = _added("prod", table)
    brokers = 2 * 0.21 * H
    storage = 2 * 100 * 0.10  # 100 GB per broker on production stacks
    shard2 = 0.318 * H + 100 * 0.23  # db.m6g.large Multi-AZ, 100 GB Multi-AZ gp3
    nodes = 3 * 0.096 * H + 3 * 20 * 0.08  # 3 x m6i.large on production stacks
    assert added == {
        "kafka-cluster": round(brokers + storage, 2),
        "kafka-key": 1.00,
        "shard2-instance": round(shard2, 2),
        "shard2-credentials": 0.40,
        **CLUSTER,
        "eks-nodes-group": round(nodes, 2),
    }
    data = brokers + storage + 1.00 + shard2 + 0.40
    assert round(data, 2) == 583.14
    assert round(sum(added.values()), 2) == round(data + 74.00 + nodes, 2) == 872.18


def test_broker_type_count_and_shard_class_move_the_bill(table: cost.PriceTable) -> None:
    added = _added(
        "staging",
        table,
        kafkaBrokers="4",
        kafkaBrokerType="kafka.t3.small",
        kafkaBrokerStorageGb="50",
        shards="3",
        dbShardInstanceClass="db.t4g.medium",
    )
    assert added["kafka-cluster"] == round(4 * 0.0456 * H + 4 * 50 * 0.10, 2)
    for shard in ("shard2-instance", "shard3-instance"):
        assert added[shard] == round(0.065 * H + 20 * 0.115, 2)
