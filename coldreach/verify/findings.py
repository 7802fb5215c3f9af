"""A check's result: one row of (check, resource, result, detail)."""

from __future__ import annotations

from dataclasses import dataclass

PASS, FAIL, SKIP = "pass", "FAIL", "skip"


@dataclass(frozen=True)
class Finding:
    check: str
    resource: str
    result: str
    """`pass`, `FAIL` or `skip` (not applicable, or not reported by the API)."""
    detail: str

    @property
    def failed(self) -> bool:
        return self.result == FAIL


def verdict(
    check: str, resource: str, ok: bool, detail: str, failed_detail: str | None = None
) -> Finding:
    """`pass` with `detail` if ok, else `FAIL` with `failed_detail` (or the same detail)."""
    if ok:
        return Finding(check, resource, PASS, detail)
    return Finding(check, resource, FAIL, detail if failed_detail is None else failed_detail)
