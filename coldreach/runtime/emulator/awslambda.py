"""Lambda: functions and their resource policies. Functions are stored, never run
(the backend selects moto's Lambda without Docker)."""

from __future__ import annotations

from pathlib import Path

from coldreach.runtime.emulator.backend import MotoBackend, handles
from coldreach.runtime.emulator.call import Call, Outputs, drop_none, pascal
from policies import tokens as t


@handles(t.LAMBDA_FUNCTION)
def function(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    code = c.get("code") or {}
    vpc = c.get("vpcConfig") or {}
    logging = c.get("loggingConfig")
    result = b.client("lambda").create_function(
        **drop_none(
            {
                "FunctionName": name,
                "Runtime": c.get("runtime"),
                "Role": c.get("role"),
                "Handler": c.get("handler"),
                # The program's archive is a zip it built on this machine.
                "Code": {"ZipFile": Path(code["archive"]).read_bytes()},
                "Description": c.get("description"),
                "Timeout": c.get("timeout"),
                "MemorySize": c.get("memorySize"),
                "VpcConfig": {
                    "SubnetIds": vpc.get("subnetIds", []),
                    "SecurityGroupIds": vpc.get("securityGroupIds", []),
                }
                if vpc
                else None,
                "Environment": pascal(c.get("environment")),
                "LoggingConfig": pascal(logging) if logging else None,
                "Tags": c.get("tags") or None,
            }
        )
    )
    arn = result["FunctionArn"]
    return name, {
        "arn": arn,
        "qualifiedArn": f"{arn}:{result.get('Version', '$LATEST')}",
        "version": result.get("Version", "$LATEST"),
        "invokeArn": f"arn:aws:apigateway:{b.region}:lambda:path/2015-03-31/functions/{arn}"
        "/invocations",
    }


@handles(t.LAMBDA_PERMISSION)
def permission(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    statement = b.name(c)
    b.client("lambda").add_permission(
        **drop_none(
            {
                "FunctionName": c.get("function"),
                "StatementId": statement,
                "Action": c.get("action"),
                "Principal": c.get("principal"),
                "SourceArn": c.get("sourceArn"),
                "SourceAccount": c.get("sourceAccount"),
            }
        )
    )
    return statement, {}
