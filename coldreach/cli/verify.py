"""`coldreach verify`: boto3 checks of a deployed stack (private data tiers, SGs, TLS, services)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from rich.console import Console

from coldreach.errors import UserError
from coldreach.verify import Aws, kept, verify
from coldreach.verify.outputs import outputs_from_file, outputs_from_pulumi, region_of
from coldreach.verify.render import render


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify",
        help="check a deployed stack with boto3 (private data tiers, SGs, TLS, services)",
        description=(
            "Reads the stack outputs and checks the deployed state through the AWS APIs: "
            "RDS and Redis private (no public access, no subnet routed to the internet), RDS "
            "encrypted, backed up and protected, the replica's source; data-tier "
            "groups admit only the app's groups; only the ALB is open to the internet, on 80/443; "
            "Redis TLS; ECS services at their desired count; ALB target health. "
            "Exits 1 when any check fails."
        ),
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="read outputs with `pulumi stack output --json`")
    source.add_argument("--outputs", type=Path, metavar="FILE", help="read outputs from FILE")
    p.add_argument("--endpoint-url", metavar="URL", help="an emulator (e.g. coldreach local)")
    p.add_argument("--region", help="AWS region (default: the stack's, or the outputs' ARNs)")
    p.add_argument(
        "--kept",
        type=Path,
        metavar="BASELINE",
        help="also check that each stateful resource in BASELINE (written by `local rehearse "
        "--baseline`) kept its identity and data",
    )
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(run=command)


def command(args: argparse.Namespace, out: Console, err: Console) -> int:
    outputs = outputs_from_file(args.outputs) if args.outputs else outputs_from_pulumi(args.stack)
    baseline = kept.read(args.kept) if args.kept else None
    aws = Aws(region_of(outputs, args.region, args.stack), args.endpoint_url)
    where = aws.endpoint_url or f"AWS {aws.region}"
    try:
        if args.json:
            findings = verify(outputs, aws, baseline)
        else:
            with err.status(f"Checking the deployed stack ({where})..."):
                findings = verify(outputs, aws, baseline)
    except NoCredentialsError:
        message = "no AWS credentials found (environment, profile or instance role)"
        raise UserError(message) from None
    except (BotoCoreError, ClientError) as error:
        raise UserError(f"{where}: {error}") from None
    failed = sum(f.failed for f in findings)
    if args.json:
        doc = {"ok": failed == 0, "failed": failed, "findings": [asdict(f) for f in findings]}
        print(json.dumps(doc, indent=2))
    else:
        render(findings, out, title=f"coldreach verify: {where}")
    return 1 if failed else 0
