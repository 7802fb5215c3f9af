"""What the documents tell a reader to type works as typed, and they agree on the timings.

A command shown with arguments is `uv run coldreach ...`: the console script is
inside the project's virtualenv, so a bare `coldreach ...` is `command not
found` unless that is active. The same holds for the hints the commands print.
The `make demo` timings appear in README.md, docs/local-demo.md and
docs/promotion.md; they must say the same.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from coldreach import promote
from coldreach.hints import COLDREACH, coldreach

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").rglob("*.md")),
    ROOT / "policies" / "README.md",
    ROOT / "app" / "README.md",
]
COMMAND = re.compile(r"(?<![\w/.-])coldreach (?:plan|cost|promote|gate|verify|local)\b[^`\n]*")


def code_lines(text: str) -> list[str]:
    """Lines of fenced blocks and inline code spans: what a reader copies."""
    lines: list[str] = []
    for block in re.finditer(r"```[^\n]*\n(.*?)```", text, re.S):
        lines += block.group(1).splitlines()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    lines += re.findall(r"`([^`]+)`", prose)
    return lines


def bare_commands(lines: list[str]) -> list[str]:
    """`coldreach <command> <arguments>` not run through uv (a bare name in prose is fine)."""
    found = []
    for line in lines:
        for match in COMMAND.finditer(line):
            has_arguments = len(match.group(0).split()) > 2
            through_uv = re.search(r"uv run(?: --frozen)?\s*$", line[: match.start()])
            if has_arguments and not through_uv:
                found.append(line.strip())
    return found


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documented_commands_run_through_uv(path: Path) -> None:
    assert bare_commands(code_lines(path.read_text())) == []


def test_the_check_finds_a_bare_command() -> None:
    text = (
        "Run `coldreach promote --stack dev --to 2`, then\n```sh\ncoldreach verify --stack x\n```"
    )
    assert bare_commands(code_lines(text)) == [
        "coldreach verify --stack x",
        "coldreach promote --stack dev --to 2",
    ]
    assert (
        bare_commands(["uv run coldreach plan --stack dev", "the `coldreach verify` checks"]) == []
    )


def test_printed_hints_run_through_uv() -> None:
    assert (
        coldreach("plan --stack dev")
        == f"{COLDREACH} plan --stack dev"
        == ("uv run coldreach plan --stack dev")
    )
    assert bare_commands(promote.runbook("dev", 2)) == []
    assert any(line.startswith("uv run coldreach verify") for line in promote.runbook("dev", 2))


TIMINGS = re.compile(r"(\d+) s \(phase 1\), (\d+) s \(phase 2\), (\d+) s \(`PROMOTE=1`\)")


def test_make_demo_timings_agree_between_readme_and_docs() -> None:
    readme = TIMINGS.findall((ROOT / "README.md").read_text())
    local_demo = TIMINGS.findall((ROOT / "docs" / "local-demo.md").read_text())
    assert len(readme) == 1 and local_demo == readme
    rehearsal = re.search(
        r"Rehearsal in the emulator \(`make demo STACK=dev PROMOTE=1`\) \| about (\d+) s of CPU",
        (ROOT / "docs" / "promotion.md").read_text(),
    )
    assert rehearsal is not None and rehearsal.group(1) == readme[0][2]
