"""`coldreach local up` deploys a stack into an embedded moto server on 127.0.0.1;
`coldreach local rehearse` deploys it and then applies the promotion to the next phase."""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coldreach import stacks
from coldreach.cli.options import phase_arg
from coldreach.errors import UserError
from coldreach.hints import coldreach
from coldreach.local import deploy, moto_server, stack_outputs, write_outputs
from coldreach.rehearsal import Protected, Rehearsal, rehearse, route_for
from coldreach.runtime.emulator import MotoBackend, UnsupportedChange
from coldreach.verify import Aws, kept


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "local",
        help="deploy a stack into an embedded AWS emulator (moto) on this machine",
        description=(
            "Runs a moto server on 127.0.0.1 and deploys the stack's program into it, so "
            "the result can be inspected with boto3 or the AWS CLI (--endpoint-url) and "
            "checked with `coldreach verify`. No AWS account and no Pulumi CLI needed."
        ),
    )
    actions = p.add_subparsers(dest="action", required=True)
    up = actions.add_parser(
        "up",
        help="start the emulator and deploy the stack into it",
        description=(
            "Starts a moto server on 127.0.0.1 (a free port unless --port), deploys STACK "
            "into it, prints the outputs and how to look around. Without --serve the "
            "emulator stops (and forgets everything) when the command ends."
        ),
    )
    up.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    up.add_argument("--phase", type=phase_arg, help="deploy this phase, not the configured one")
    up.add_argument("--port", type=int, help="port for the emulator (default: a free one)")
    up.add_argument(
        "--outputs",
        type=Path,
        metavar="FILE",
        help="write the stack outputs here (JSON, like `pulumi stack output --json`)",
    )
    up.add_argument(
        "--serve", action="store_true", help="keep the emulator running until Ctrl-C or SIGTERM"
    )
    up.set_defaults(run=command)

    rehearse = actions.add_parser(
        "rehearse",
        help="deploy a phase, then apply the promotion to the next one as an update",
        description=(
            "Starts a moto server on 127.0.0.1, deploys STACK at --from (default: its "
            "configured phase), records every stateful resource with its identity and data, "
            "then applies each stage of the promotion to the next phase as an update of what "
            "is deployed (creates, in-place updates, replacements, deletes) and shows which "
            "stateful ids changed (none may). `verify --kept BASELINE` then checks them "
            "through the APIs. Exits 1 if a stateful id changed."
        ),
    )
    rehearse.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    rehearse.add_argument(
        "--from",
        dest="source",
        type=phase_arg,
        help="deploy this phase first (default: the configured one)",
    )
    rehearse.add_argument("--port", type=int, help="port for the emulator (default: a free one)")
    rehearse.add_argument(
        "--outputs", type=Path, metavar="FILE", help="write the promoted stack's outputs here"
    )
    rehearse.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="write the stateful resources as they were before the promotion (for verify --kept)",
    )
    rehearse.add_argument(
        "--serve", action="store_true", help="keep the emulator running until Ctrl-C or SIGTERM"
    )
    rehearse.set_defaults(run=rehearse_command)


def _region(args: argparse.Namespace) -> str:
    if args.port is not None and not 0 < args.port < 65536:
        raise UserError(f"--port must be 1-65535, not {args.port}")
    cfg = stacks.load(stacks.find_root(), args.stack)  # a missing stack fails before the server
    cfg.values()  # and so does a bad value (`phase: two`)
    return cfg.region or "us-east-1"


def command(args: argparse.Namespace, out: Console, err: Console) -> int:
    region = _region(args)
    started = time.monotonic()
    with err.status("Starting the moto server...") as status, moto_server(args.port) as url:
        err.print(f"moto server listening on [bold]{url}[/]")
        backend = MotoBackend(region, endpoint_url=url)

        def progress(type_: str, name: str, _id: str) -> None:
            short = type_.split(":")[-1]
            status.update(
                f"Deploying {args.stack}: {len(backend.created)} resources ({short} {name})"
            )

        backend.on_create = progress
        status.update(f"Deploying stack {args.stack} into {url}...")
        deployment = deploy(args.stack, backend, args.phase)
        status.stop()
        outputs = stack_outputs(deployment)
        phase = outputs.get("phase")
        elapsed = time.monotonic() - started
        err.print(
            f"Deployed stack [bold]{escape(args.stack)}[/] (phase {phase}): "
            f"{len(backend.created)} resources in {elapsed:.1f} s"
        )
        _print_rendered(err, backend.rendered)
        _print_outputs(out, outputs)
        _print_help(out, url, region, outputs, args.outputs, serving=args.serve)
        if args.outputs:
            # Last: whoever waits for this file (make demo) finds the deployment complete.
            write_outputs(args.outputs, outputs)
            err.print(f"Stack outputs written to {escape(str(args.outputs))}")
        _finish(args, err, url)
    return 0


def _print_rendered(err: Console, rendered: list[tuple[str, str]]) -> None:
    """What the program declared but moto cannot hold: in the plan, not in the emulator."""
    if not rendered:
        return
    counts = Counter(type_ for type_, _ in rendered)
    err.print(
        f"[yellow]Rendered, not deployed[/] ({len(rendered)}: moto cannot hold them; "
        "they are in `coldreach plan` and the policy pack, and need a real cluster):"
    )
    for type_, n in sorted(counts.items()):
        names = ", ".join(sorted(name for t, name in rendered if t == type_))
        err.print(f"  {escape(type_)} x{n}: {escape(names)}")


def _finish(args: argparse.Namespace, err: Console, url: str) -> None:
    if args.serve:
        _serve_until_stopped(err, url)
    else:
        err.print("Stopping the moto server (use --serve to keep it running).")


def rehearse_command(args: argparse.Namespace, out: Console, err: Console) -> int:
    region = _region(args)
    route_for(args.stack, args.source)  # no route to the next phase: refused before the server
    started = time.monotonic()
    with err.status("Starting the moto server...") as status, moto_server(args.port) as url:
        err.print(f"moto server listening on [bold]{url}[/]")
        backend = MotoBackend(region, endpoint_url=url)

        def progress(message: str) -> None:
            err.print(f"{time.monotonic() - started:5.1f} s  {escape(message)}")
            status.update(message + "...")

        try:
            result = rehearse(args.stack, backend, Aws(region, url), args.source, progress)
        except (UnsupportedChange, Protected) as error:
            raise UserError(str(error)) from None
        status.stop()
        err.print(
            f"Rehearsed {escape(args.stack)} phase {result.route.source} -> "
            f"{result.route.target} in {time.monotonic() - started:.1f} s"
        )
        _print_rehearsal(out, result)
        outputs = stack_outputs(result.after)
        _print_outputs(out, outputs)
        if args.baseline:
            kept.write(args.baseline, result.kept_baseline())
            err.print(f"Baseline written to {escape(str(args.baseline))}")
        if args.outputs and args.baseline:
            check = coldreach(
                f"verify --outputs {args.outputs} --endpoint-url {url} --kept {args.baseline}"
            )
            out.print(f"Check it: {escape(check)}", soft_wrap=True, highlight=False)
        if args.outputs:
            write_outputs(args.outputs, outputs)  # last: make demo waits for this file
            err.print(f"Stack outputs written to {escape(str(args.outputs))}")
        _finish(args, err, url)
    return 1 if result.changed_ids else 0


def _print_rehearsal(out: Console, result: Rehearsal) -> None:
    for run in result.stages:
        counts = Counter(s.op for s in run.steps)
        out.print(
            f"[bold]Stage {escape(run.stage.name)!r}[/]: "
            + ", ".join(
                f"{counts.get(op, 0)} {op}d" for op in ("create", "update", "replace", "delete")
            )
        )
        table = Table(title=f"Updated, replaced or deleted: {run.stage.name}")
        for column in ("op", "resource", "type", "inputs"):
            table.add_column(column, overflow="fold")
        for step in sorted(run.steps, key=lambda s: (s.op, s.resource.name)):
            if step.op != "create":
                table.add_row(
                    step.op, escape(step.resource.name), escape(step.resource.type),
                    escape(", ".join(step.inputs)),
                )  # fmt: skip
        out.print(table)
    ids = Table(title="Stateful resources: id before and after the promotion")
    for column in ("resource", "type", "id before", "id after", ""):
        ids.add_column(column, overflow="fold")
    for r, now in result.stateful_ids():
        mark = "[green]kept[/]" if now == r.id else "[red bold]CHANGED[/]"
        if now is None and r.urn in result.retired:
            mark = "[yellow]retired by its stage[/]"
        ids.add_row(escape(r.name), escape(r.type), escape(str(r.id)), escape(str(now)), mark)
    out.print(ids)
    for stage, why in result.not_rehearsed:
        out.print(
            f"[yellow]Not rehearsed:[/] stage {escape(stage.name)!r}: {escape(why)}",
            soft_wrap=True,
        )


def _print_outputs(out: Console, outputs: dict[str, Any]) -> None:
    table = Table(title="Stack outputs")
    table.add_column("output")
    table.add_column("value", overflow="fold")
    for key, value in outputs.items():
        table.add_row(key, escape(value if isinstance(value, str) else json.dumps(value)))
    out.print(table)


def _print_help(
    out: Console,
    url: str,
    region: str,
    outputs: dict[str, Any],
    outputs_file: Path | None,
    serving: bool,
) -> None:
    env = f"AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={region}"
    aws = f"aws --endpoint-url {url}"
    heading = (
        "[bold]Look around[/] (the emulator accepts any credentials):"
        if serving
        else "[bold]Look around[/] while it runs (add --serve to keep it up), for example:"
    )
    lines = [
        heading,
        f"  export {env}",
        f"  {aws} ec2 describe-security-groups "
        f"--filters Name=vpc-id,Values={outputs.get('vpc_id')}",
        f"  {aws} rds describe-db-instances",
        f"  {aws} ecs describe-services --cluster {outputs.get('cluster_name')} "
        f"--services {outputs.get('web_service_name')}",
        f"  {aws} elbv2 describe-load-balancers",
        "  python -c \"import boto3; print(boto3.client('rds', endpoint_url='"
        + url
        + "').describe_db_instances()['DBInstances'][0]['Endpoint'])\"",
    ]
    if outputs_file:
        lines.append("  " + coldreach(f"verify --outputs {outputs_file} --endpoint-url {url}"))
    text = "\n".join(escape(line) if i else line for i, line in enumerate(lines))
    out.print(text, soft_wrap=True, highlight=False)


def _serve_until_stopped(err: Console, url: str) -> None:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    err.print(f"Serving on {url}; Ctrl-C (or SIGTERM) stops it.")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    err.print("Stopping the moto server.")
