"""Entry point for `pulumi preview --policy-pack policies`: builds the pack and serves it.

`PolicyPack(...)` starts the analyzer's gRPC server and never returns, so
nothing may import this module: tests and `coldreach plan` use
`policies.catalog` (and the tooling, coldreach/policy_eval.py).
"""

import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack

# The pack runs from policies/; make the repository root importable for `policies.*`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policies import catalog

PolicyPack(
    name=catalog.PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=catalog.policies(),
)
