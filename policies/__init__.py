"""The Cold Reach policy pack: security rules for `pulumi preview --policy-pack policies`.

The rules live in importable modules (network, edge, compute, data, graph) and
register themselves in `policies.model.RULES`; `policies.catalog` loads them
all. `__main__.py` only builds the `PolicyPack` (which starts a gRPC server and
never returns), so import `policies.catalog` instead; the offline evaluation of the
same rules lives with the tooling (coldreach/policy_eval.py).
"""
