"""Monthly cost of known configurations, against totals worked out by hand here."""

from __future__ import annotations

import json

import pytest

from coldreach import cost
from coldreach.cli import main
from coldreach.evaluation import evaluate_stack

H = 730  # hours in a month, as the price table says


@pytest.fixture(scope="module")
def table() -> cost.PriceTable:
    return cost.PriceTable.load()


def test_dev_phase1_by_hand(table: cost.PriceTable) -> None:
    estimate = cost.estimate(evaluate_stack("dev"), table)
    fargate = 0.25 * 0.04048 * H + 0.5 * 0.004445 * H  # one 256 CPU / 512 MiB task
    task_ip = 0.005 * H  # phase 1 tasks have a public IPv4 (ADR 0001)
    rds = 0.016 * H + 20 * 0.115  # db.t4g.micro single-AZ + 20 GB gp3
    alb = 0.0225 * H + 1 * 0.008 * H + 2 * 0.005 * H  # hours + 1 LCU + an IPv4 per AZ
    secrets = 2 * 0.40 + 20_000 / 10_000 * 0.05
    ecr, logs = 2 * 0.10, 5 * 0.50
    expected = fargate + task_ip + rds + alb + secrets + ecr + logs
    assert estimate.monthly_usd == round(expected, 2) == 59.81
    assert not estimate.missing_prices
    assert not estimate.by_resource().get("net-nat-0"), "phase 1 has no NAT"


def test_staging_phase2_by_hand(table: cost.PriceTable) -> None:
    estimate = cost.estimate(evaluate_stack("staging"), table)
    web = 2 * (0.5 * 0.04048 + 1 * 0.004445) * H  # 2 tasks (autoscaling minimum)
    worker = 1 * (0.5 * 0.04048 + 1 * 0.004445) * H
    rds = 2 * (0.072 * H + 20 * 0.115)  # db.t3.medium primary and replica
    redis = 1 * 0.017 * H  # cache.t3.micro
    nat = 0.045 * H + 50 * 0.045 + 0.005 * H  # one NAT, 50 GB, its Elastic IP
    alb = 0.0225 * H + 0.008 * H + 2 * 0.005 * H
    secrets = 4 * 0.40 + 0.10  # db, unsubscribe key, Redis token, Redis URL
    expected = web + worker + rds + redis + nat + alb + secrets + 0.20 + 2.50
    assert estimate.monthly_usd == round(expected, 2) == 248.91


def test_prod_phase2_by_hand(table: cost.PriceTable) -> None:
    estimate = cost.estimate(evaluate_stack("prod"), table)
    web = 3 * (1 * 0.04048 + 2 * 0.004445) * H
    worker = 2 * (1 * 0.04048 + 2 * 0.004445) * H
    primary = 0.318 * H + 100 * 0.23  # db.m6g.large Multi-AZ, 100 GB Multi-AZ gp3
    replica = 0.159 * H + 100 * 0.115
    redis = 2 * 0.149 * H
    nat = 2 * (0.045 * H + 50 * 0.045 + 0.005 * H)
    alb = 0.0225 * H + 0.008 * H + 2 * 0.005 * H
    # WAF, on by default in production: the ACL, 3 managed rule groups and the rate
    # rule, and 3 million requests inspected.
    waf = 5.00 + 4 * 1.00 + 3 * 0.60
    expected = web + worker + primary + replica + redis + nat + alb + waf + 1.70 + 0.20 + 2.50
    assert estimate.monthly_usd == round(expected, 2) == 902.72
    low = {i.resource for i in estimate.items if i.low_confidence}
    assert {"db-instance", "db-replica", "cache-redis"} <= low


def test_assumptions_override_usage_items(table: cost.PriceTable) -> None:
    base = cost.estimate(evaluate_stack("staging"), table)
    more = cost.estimate(
        evaluate_stack("staging"), table.with_assumptions({"nat_gb_per_month": 1050})
    )
    assert round(more.monthly_usd - base.monthly_usd, 2) == round(1000 * 0.045, 2)
    with pytest.raises(ValueError, match="unknown keys"):
        table.with_assumptions({"nat_gigabytes": 3})


def test_ses_is_priced_when_a_sender_domain_is_set(table: cost.PriceTable) -> None:
    d = evaluate_stack("dev", overrides={"cold-reach:senderDomain": "mail.example.com"})
    [ses] = [i for i in cost.estimate(d, table).items if i.price_key == "ses.per_1000"]
    assert ses.monthly_usd == pytest.approx(30_000 / 1000 * 0.10) and ses.usage_based


def test_a_class_without_a_price_is_listed_not_guessed(table: cost.PriceTable) -> None:
    d = evaluate_stack("dev", overrides={"cold-reach:dbInstanceClass": "db.x2g.large"})
    estimate = cost.estimate(d, table)
    assert estimate.missing_prices == ["rds.postgres.db.x2g.large.single_az_hour"]


def test_every_price_has_a_source_and_a_date(table: cost.PriceTable) -> None:
    for price in table.prices.values():
        assert price.usd > 0 and price.source and price.date[:2] == "20", price.key


def test_cost_json_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--stack", "dev", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"stack", "phase", "monthly_usd", "items"} <= set(doc)
    assert doc["monthly_usd"] == 59.81
    assert round(sum(i["monthly_usd"] for i in doc["items"]), 2) == pytest.approx(59.81, abs=0.02)


def test_plan_carries_the_cost(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "dev", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cost"]["monthly_usd"] == 59.81
    assert doc["cost"]["by_resource"]["db-instance"] == round(0.016 * H + 20 * 0.115, 2)
    assert main(["plan", "--stack", "dev"]) == 0
    assert "Monthly cost: $59.81" in capsys.readouterr().out


def test_cost_assumptions_are_read_by_their_declaration() -> None:
    from coldreach import stacks

    def config(raw: str) -> stacks.StackConfig:
        return stacks.StackConfig("cold-reach", "dev", {cost.ASSUMPTIONS_KEY: raw}, [])

    assert cost.assumptions_of(config('{"nat_gb_per_month": 7}')) == {"nat_gb_per_month": 7}
    for bad in ("[1, 2]", "{not json"):
        with pytest.raises(
            stacks.StackError, match=r"cold-reach:costAssumptions = .* a JSON object"
        ):
            cost.assumptions_of(config(bad))
