"""The moto backend's coverage, and `coldreach local up` / `coldreach verify` as commands."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pulumi_aws as aws
import pytest
from moto import mock_aws
from moto_helpers import EVERYTHING

from coldreach import cli
from coldreach.evaluation import evaluate_stack
from coldreach.local import HOST, free_port
from coldreach.runtime import evaluate
from coldreach.runtime.emulator import (
    EMULATOR_CREDENTIALS,
    MotoBackend,
    UnsupportedResource,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_type_phases_1_and_2_declare_has_a_handler() -> None:
    declared: set[str] = set()
    for stack, phase in (("dev", 1), ("prod", 2)):
        deployment = evaluate_stack(stack, phase, overrides=EVERYTHING)  # echo backend
        declared |= {r.type for r in deployment if r.custom}
    assert declared - set(MotoBackend("us-east-1").supported_types) == set()
    assert "aws:sesv2/emailIdentity:EmailIdentity" in declared


# --- the commands -------------------------------------------------------------------------


def _wait_for(path: Path, process: subprocess.Popen[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"local up exited early:\n{process.communicate()[1]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no outputs file after {seconds} s")
        time.sleep(0.2)


def test_local_up_serves_until_sigterm_and_verify_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # the table on one line per finding
    outputs, port = tmp_path / "outputs.json", free_port()
    url = f"http://{HOST}:{port}"
    command = [sys.executable, "-m", "coldreach.cli", "local", "up", "--stack", "dev"]
    command += ["--port", str(port), "--outputs", str(outputs), "--serve"]
    env = {**os.environ, "COLUMNS": "200"}
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    process = subprocess.Popen(command, cwd=ROOT, env=env, text=True, **pipes)
    try:
        _wait_for(outputs, process, 60)
        doc = json.loads(outputs.read_text())
        assert doc["phase"] == 1 and doc["vpc_id"].startswith("vpc-")

        assert cli.main(["verify", "--outputs", str(outputs), "--endpoint-url", url, "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["ok"] and report["failed"] == 0

        # The deployment is live in the server: open the database to the world through it.
        ec2 = boto3.client("ec2", endpoint_url=url, region_name="us-east-1", **EMULATOR_CREDENTIALS)
        groups = ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [doc["vpc_id"]]}]
        )["SecurityGroups"]
        db_sg = next(g["GroupId"] for g in groups if g["GroupName"].startswith("db-sg"))
        ec2.authorize_security_group_ingress(
            GroupId=db_sg,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 5432,
                    "ToPort": 5432,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                }
            ],
        )
        assert cli.main(["verify", "--outputs", str(outputs), "--endpoint-url", url]) == 1
        table = capsys.readouterr().out
        assert "sg.db_ingress" in table and "FAIL" in table and db_sg in table
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "aws --endpoint-url " + url in stdout
    assert "Stopping the moto server" in stderr
    with socket.socket() as s:  # the port is free again (as a server would bind it)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, port))


def test_verify_explains_missing_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli.main(["verify", "--outputs", str(tmp_path / "none.json")]) == 2
    assert "cannot read the outputs file" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"phase": 1}')
    assert cli.main(["verify", "--outputs", str(tmp_path / "bad.json")]) == 2
    assert "missing stack outputs vpc_id" in capsys.readouterr().err
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.main(["verify", "--stack", "dev"]) == 2
    assert "pulumi CLI is not on PATH" in capsys.readouterr().err


def test_local_up_refuses_an_unknown_stack_or_a_busy_port(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["local", "up", "--stack", "nope"]) == 2
    assert "no stack file Pulumi.nope.yaml" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli.main(["local", "up", "--stack", "dev", "--port", str(port)]) == 2
    assert f"cannot listen on {HOST}:{port}" in capsys.readouterr().err


def test_an_unsupported_type_stops_the_program_naming_it() -> None:
    def program() -> None:
        aws.ec2.Vpc("net", cidr_block="10.0.0.0/16")
        aws.sqs.Queue("events")

    with (
        mock_aws(),
        pytest.raises(UnsupportedResource, match=r"aws:sqs/queue:Queue \('events'\)"),
    ):
        evaluate(
            program,
            project="p",
            stack="s",
            config={"aws:region": "us-east-1"},
            secret_keys=[],
            backend=MotoBackend("us-east-1"),
        )
