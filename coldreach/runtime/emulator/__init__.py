"""The moto backend: the program deployed through boto3 into a moto account.

`backend` holds `MotoBackend` and the dispatch by type token (`HANDLERS`,
filled by `handles`; `UPDATERS` and `DELETERS` for a rehearsed promotion),
`call` what a handler receives; each other module holds the handlers of one
AWS service and registers them on import, which this package does for all of
them.
"""

from coldreach.runtime.emulator import (  # noqa: F401  (each registers its handlers)
    appautoscaling,
    awslambda,
    cloudwatch,
    ec2,
    ecr,
    ecs,
    eks,
    elasticache,
    elbv2,
    generated,
    iam,
    kafka,
    kms,
    logs,
    rds,
    s3,
    secretsmanager,
    ses,
    sns,
    wafv2,
)
from coldreach.runtime.emulator.backend import (
    DELETERS,
    EMULATOR_CREDENTIALS,
    HANDLERS,
    UPDATERS,
    MotoBackend,
)
from coldreach.runtime.emulator.call import UnsupportedChange, UnsupportedResource

__all__ = [
    "DELETERS",
    "EMULATOR_CREDENTIALS",
    "HANDLERS",
    "UPDATERS",
    "MotoBackend",
    "UnsupportedChange",
    "UnsupportedResource",
]
