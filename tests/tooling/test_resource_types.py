"""One registry of resource types (policies/resource_types.py), and every table that reads it."""

from __future__ import annotations

from coldreach import cost, graph, replacement
from coldreach.runtime import Deployment, echo
from coldreach.runtime.emulator import HANDLERS, MotoBackend
from policies import catalog
from policies.resource_types import STATEFUL, TYPES


def test_every_type_is_emulated_or_listed_as_rendered_not_deployed() -> None:
    emulated = {token for token, r in TYPES.items() if r.emulated}
    assert emulated == set(HANDLERS), "registry and emulator handlers disagree"
    assert set(MotoBackend("us-east-1").supported_types) == emulated


def test_every_stateful_type_has_curated_replacement_inputs() -> None:
    assert STATEFUL
    for token in STATEFUL:
        assert TYPES[token].replaced_by, token
    # Stateless types may list theirs too (a task definition is replaced, not updated).
    assert set(STATEFUL) <= set(replacement.REPLACEMENT_INPUTS)


def test_the_pack_and_the_tooling_agree_on_what_is_stateful() -> None:
    assert frozenset(STATEFUL) == graph.STATEFUL_TYPES
    protected = catalog.rule("X1")
    assert set(protected.types) == set(STATEFUL)
    # Both S3 bucket types hold objects (pulumi-aws 7 keeps BucketV2 as an alias of Bucket).
    assert {"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"} <= set(STATEFUL)


def test_echo_outputs_and_pricing_rules_belong_to_registered_types() -> None:
    assert set(echo.OUTPUTS) <= set(TYPES)
    empty = Deployment(stack="x", project="cold-reach", resources=[], outputs={"phase": 1})
    rules = cost.Pricer(empty, cost.PriceTable.load()).rules()
    assert {r.cost for r in TYPES.values() if r.cost} == set(rules)


def test_every_emulated_type_has_an_id_rule() -> None:
    for token, r in TYPES.items():
        if r.emulated:
            assert r.id is not None, token
        if r.id is not None and not r.id.startswith("@"):
            assert r.id.endswith("-"), token
