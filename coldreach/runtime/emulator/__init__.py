"""The moto backend: the program deployed through boto3 into a moto account.

`backend` holds `MotoBackend` and the dispatch by type token (`HANDLERS`,
filled by `handles`), `call` what a handler receives; each other module holds
the handlers of one AWS service and registers them on import, which this
package does for all of them.
"""

from coldreach.runtime.emulator import (  # noqa: F401  (each registers its handlers)
    appautoscaling,
    awslambda,
    cloudwatch,
    ec2,
    ecr,
    ecs,
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
from coldreach.runtime.emulator.backend import EMULATOR_CREDENTIALS, HANDLERS, MotoBackend
from coldreach.runtime.emulator.call import UnsupportedResource

__all__ = ["EMULATOR_CREDENTIALS", "HANDLERS", "MotoBackend", "UnsupportedResource"]
