"""verify's findings as a table, with a pass/fail/skip summary."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coldreach.verify.findings import FAIL, PASS, SKIP, Finding


def render(findings: list[Finding], console: Console, title: str = "coldreach verify") -> None:
    table = Table(title=escape(title))
    table.add_column("check", no_wrap=True)
    table.add_column("resource", overflow="fold")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    styles = {PASS: "green", FAIL: "bold red", SKIP: "yellow"}
    for f in findings:
        result = f"[{styles[f.result]}]{f.result}[/]"
        table.add_row(escape(f.check), escape(f.resource), result, escape(f.detail))
    console.print(table)
    failed = sum(x.failed for x in findings)
    passed = sum(x.result == PASS for x in findings)
    skipped = sum(x.result == SKIP for x in findings)
    summary = f"{passed} passed, {failed} failed, {skipped} skipped"
    console.print(f"[bold red]{summary}[/]" if failed else f"[green]{summary}[/]")
