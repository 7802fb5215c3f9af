"""Bad config stops the program before any resource, naming key, value and what is allowed."""

from __future__ import annotations

import pytest

from coldreach.cli import main
from coldreach.evaluation import evaluate_stack
from coldreach.runtime import ProgramError
from infra.config import ConfigError, Settings, parse


def settings(region: str | None = "us-east-1", **values: str) -> Settings:
    return parse("dev", values.get, region)


def test_defaults_describe_a_small_phase1_stack() -> None:
    s = settings()
    web = s.service("web")
    assert (s.phase, s.database.instance_class, web.cpu, web.memory) == (
        1,
        "db.t4g.micro",
        256,
        512,
    )
    assert s.protect and not s.edge.https


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("phase", "0", ">= 1 and <= 3"),
        ("phase", "4", ">= 1 and <= 3"),
        ("phase", "two", "a whole number"),
        ("dbInstanceClass", "t3.micro", "an RDS instance class"),
        ("dbInstanceClass", "cache.t3.micro", "an RDS instance class"),
        ("webDesiredCount", "0", ">= 1"),
        ("webDesiredCount", "-2", ">= 1"),
        ("webDbPoolSize", "0", ">= 1"),
        ("vpcCidr", "10.40.0.0/33", "CIDR"),
        ("vpcCidr", "10.40.0.1/16", "CIDR"),
        ("vpcCidr", "banana", "CIDR"),
        ("vpcCidr", "10.40.0.0/24", "from /16 to /20"),
        ("webCpu", "300", "a Fargate CPU size"),
        ("webMemory", "4096", "for webCpu 256"),
        ("logRetentionDays", "10", "one of"),
        ("dbBackupRetentionDays", "3", ">= 7"),
        ("dbAllocatedStorageGb", "10", ">= 20"),
        ("dbEngineVersion", "15.4", "PostgreSQL 16"),
        ("certificateArn", "not-an-arn", "an ACM certificate ARN"),
        ("senderDomain", "Mail.Example.COM", "a lowercase DNS domain"),
        ("ephemeral", "maybe", "true or false"),
        ("mailFrom", "a@b.com", "only together with senderDomain"),
    ],
)
def test_each_bad_value_is_named_with_what_is_allowed(key: str, value: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(**{key: value})
    message = str(caught.value)
    assert f"cold-reach:{key} = " in message
    assert repr(value) in message or value.lstrip("-") in message
    assert allowed in message


def test_mail_from_must_belong_to_the_sender_domain() -> None:
    with pytest.raises(ConfigError, match="an address at senderDomain"):
        settings(senderDomain="mail.example.com", mailFrom="me@other.com")


def test_max_storage_below_storage_is_refused() -> None:
    with pytest.raises(ConfigError, match="dbMaxAllocatedStorageGb"):
        settings(dbAllocatedStorageGb="200", dbMaxAllocatedStorageGb="100")


def test_unknown_and_missing_region_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"aws:region = 'us-middle-1' is not allowed: one of "):
        settings(region="us-middle-1")
    with pytest.raises(ConfigError, match="set aws:region"):
        settings(region=None)


def test_program_stops_before_declaring_anything() -> None:
    with pytest.raises(ProgramError, match=r"cold-reach:phase = 7") as caught:
        evaluate_stack("dev", overrides={"cold-reach:phase": "7"})
    assert "Traceback" not in str(caught.value)


def test_cli_prints_one_clear_line_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    # --phase is checked by the CLI itself; a bad stack file value by the program.
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--stack", "dev", "--phase", "5"])
    assert exited.value.code == 2
    assert "phase must be 1, 2 or 3, not 5" in capsys.readouterr().err

    assert main(["plan", "--stack", "nosuchstack"]) == 2
    err = capsys.readouterr().err
    assert "no stack file Pulumi.nosuchstack.yaml" in err and "dev, prod, staging" in err
    assert "Traceback" not in err


def test_stack_files_all_load() -> None:
    from coldreach import stacks

    root = stacks.find_root()
    for name in ("dev", "staging", "prod"):
        cfg = stacks.load(root, name)
        s = parse(name, lambda k, c=cfg: c.config.get(f"cold-reach:{k}"), cfg.region)
        assert s.phase == (1 if name == "dev" else 2)
    assert parse(
        "prod", lambda k: stacks.load(root, "prod").config.get(f"cold-reach:{k}"), "us-east-1"
    ).database.multi_az


def test_an_unknown_key_is_refused_with_the_nearest_valid_name() -> None:
    # The typo would otherwise pass silently and prod would run single-AZ.
    with pytest.raises(ProgramError) as caught:
        evaluate_stack("prod", overrides={"cold-reach:dbMultiAZ": "true"})
    assert str(caught.value) == (
        "cold-reach:dbMultiAZ is not a known key: did you mean cold-reach:dbMultiAz?"
    )
    with pytest.raises(ConfigError, match="cold-reach:zzz is not a known key"):
        parse("dev", {}.get, "us-east-1", keys_set=["zzz"])


def test_a_key_that_does_nothing_in_this_phase_is_a_warning() -> None:
    d = evaluate_stack("dev", overrides={"cold-reach:cacheNodes": "2"})
    assert (
        "warning",
        "cold-reach:cacheNodes is set but changes nothing in phase 1 (it acts in phase 2, 3)",
    ) in d.messages


def test_every_key_the_stack_files_set_is_declared() -> None:
    from coldreach import stacks
    from infra.config import SCHEMA, project_keys

    root = stacks.find_root()
    for name in stacks.available(root):
        SCHEMA.check_known(project_keys(stacks.load(root, name).config))


def test_readme_sections_are_generated_from_the_declarations() -> None:
    from infra import reference

    text = reference.README.read_text()
    for name, make in reference.SECTIONS.items():
        assert reference.section(text, name) == make(), (
            f"README.md's {name} section is stale: "
            "uv run --frozen python -m infra.reference --write"
        )


def test_phase_3_defaults_the_primary_to_a_class_its_pools_fit() -> None:
    """The cluster's pools beside the ECS ones need ~320 connections: a micro class would be
    refused, so a stack that leaves the class unset gets db.t4g.medium from phase 3 on."""
    for phase, expected in (("1", "db.t4g.micro"), ("2", "db.t4g.micro"), ("3", "db.t4g.medium")):
        settings = parse("dev", {"phase": phase}.get, "us-east-1")
        assert settings.database.instance_class == expected
    with pytest.raises(ConfigError, match=r"db\.t4g\.micro allows about"):
        parse("dev", {"phase": "3", "dbInstanceClass": "db.t4g.micro"}.get, "us-east-1")
