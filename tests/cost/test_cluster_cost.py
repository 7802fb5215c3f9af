"""What the EKS cluster adds to the bill, worked out by hand, and the extended-support
warning that a version past its standard support brings."""

from __future__ import annotations

from datetime import date

import pytest

from coldreach import cost
from coldreach.evaluation import evaluate_stack
from coldreach.runtime import Deployment

H = 730
BEFORE_1_35_ENDS = date(2026, 12, 3)


@pytest.fixture(scope="module")
def table() -> cost.PriceTable:
    return cost.PriceTable.load()


@pytest.fixture(scope="module")
def staging3() -> Deployment:
    return evaluate_stack("staging", 3)


def cluster_items(estimate: cost.Estimate) -> dict[str, float]:
    return {i.what: round(i.monthly_usd, 2) for i in estimate.items if i.resource.startswith("eks")}


def test_cluster_rows_by_hand(staging3: Deployment, table: cost.PriceTable) -> None:
    estimate = cost.estimate(staging3, table, today=BEFORE_1_35_ENDS)
    assert cluster_items(estimate) == {
        "EKS control plane": round(0.10 * H, 2),  # 73.00
        "EC2 2 x m6i.large": round(2 * 0.096 * H, 2),  # 140.16
        "EBS gp3 root 2 x 20 GB": round(2 * 20 * 0.08, 2),  # 3.20
        "customer managed key": 1.00,  # the key sealing Kubernetes secrets
    }
    assert estimate.warnings == []
    assert not estimate.missing_prices


def test_phase_3_costs_the_cluster_on_top_of_phase_2(
    staging3: Deployment, table: cost.PriceTable
) -> None:
    two = cost.estimate(evaluate_stack("staging"), table, today=BEFORE_1_35_ENDS)
    three = cost.estimate(staging3, table, today=BEFORE_1_35_ENDS)
    cluster = 0.10 * H + 2 * 0.096 * H + 2 * 20 * 0.08 + 1.00  # 217.36
    # Phase 3's data rows (tests/cost/test_cost_phase3_data.py): 2 x kafka.m5.large with
    # 20 GB each and their key, shard 2 (db.t3.medium, 20 GB gp3) and its secret.
    data = 2 * 0.21 * H + 2 * 20 * 0.10 + 1.00 + 0.072 * H + 20 * 0.115 + 0.40  # 366.86
    # The control plane's log group adds no fixed cost (logs are priced per GB ingested,
    # once per stack), the workloads' roles, groups and Kubernetes objects cost nothing of
    # their own, and the ECS services keep running until the cutover.
    assert round(three.monthly_usd - two.monthly_usd, 2) == round(cluster + data, 2) == 584.22


def test_a_version_past_standard_support_bills_extended_support_and_warns(
    table: cost.PriceTable,
) -> None:
    prod = evaluate_stack("prod", 3, overrides={"cold-reach:eksVersion": "1.33"})
    estimate = cost.estimate(prod, table, today=BEFORE_1_35_ENDS)
    rows = cluster_items(estimate)
    assert rows["EKS control plane, extended support (1.33)"] == round(0.60 * H, 2)  # 438.00
    assert "EKS control plane" not in rows
    (warning,) = estimate.warnings
    assert "left EKS standard support on 2026-07-29" in warning and "$0.60" in warning


def test_standard_upgrade_policy_is_not_billed_extended_but_still_warns(
    table: cost.PriceTable,
) -> None:
    staging = evaluate_stack("staging", 3, overrides={"cold-reach:eksVersion": "1.33"})
    estimate = cost.estimate(staging, table, today=BEFORE_1_35_ENDS)
    assert cluster_items(estimate)["EKS control plane"] == 73.00
    (warning,) = estimate.warnings
    assert "AWS upgrades the control plane" in warning


def test_warns_before_standard_support_ends_and_for_unknown_versions(
    staging3: Deployment, table: cost.PriceTable
) -> None:
    soon = cost.estimate(staging3, table, today=date(2027, 2, 1))
    assert ["leaves EKS standard support on 2027-03-27" in w for w in soon.warnings] == [True]
    unknown = evaluate_stack("staging", 3, overrides={"cold-reach:eksVersion": "1.99"})
    (warning,) = cost.estimate(unknown, table, today=BEFORE_1_35_ENDS).warnings
    assert "unknown" in warning


def test_the_default_version_is_in_standard_support_on_the_calendar() -> None:
    from infra.config import SCHEMA

    default = SCHEMA.by_name["eksVersion"].default
    assert cost.eks_standard_support_ends()[default] > BEFORE_1_35_ENDS
