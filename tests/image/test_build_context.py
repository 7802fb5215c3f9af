"""The image tag hashes exactly the files `docker build app` sends.

The cases are Docker's documented .dockerignore rules (Go's filepath.Match plus
`**`, anchored at the context root, the last matching line wins).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from components.registry import context_files, ignore_rules, ignored, source_hash

APP = Path(__file__).resolve().parents[2] / "app"


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        # A plain name matches at the root only.
        ("__pycache__", "__pycache__/m.cpython-311.pyc", True),
        ("__pycache__", "src/pkg/__pycache__/m.cpython-311.pyc", False),
        ("*.pyc", "src/m.pyc", False),
        ("/var", "var/app.db", True),
        ("**/__pycache__", "src/pkg/__pycache__/m.cpython-311.pyc", True),
        ("**/__pycache__", "__pycache__/m.pyc", True),
        ("**/*.go", "main.go", True),
        ("**/*.go", "a/b/c.go", True),
        ("*/temp*", "somedir/temporary.txt", True),
        ("*/temp*", "somedir/temp", True),
        ("*/temp*", "temp.txt", False),
        ("*/temp*", "a/b/temp", False),
        ("*/*/temp*", "somedir/subdir/temporary.txt", True),
        ("temp?", "tempa", True),
        ("temp?", "temp/x", False),
        ("docs/[a-c]*.md", "docs/b.md", True),
        ("docs/[a-c]*.md", "docs/d.md", False),
        # Exceptions: the last matching line decides.
        ("*.md\n!README.md", "README.md", False),
        ("*.md\n!README.md", "CHANGES.md", True),
        ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),
        ("*.md\n!README*.md\nREADME-secret.md", "README-x.md", False),
        ("# a comment\n\n  var  ", "var/x", True),
    ],
)
def test_patterns_match_as_docker_matches_them(patterns: str, path: str, excluded: bool) -> None:
    assert ignored(path, ignore_rules(patterns)) is excluded


def test_caches_at_any_depth_stay_out_of_the_apps_context() -> None:
    rules = ignore_rules((APP / ".dockerignore").read_text())
    for path in (
        "src/openapi_server/__pycache__/main.cpython-311.pyc",
        "src/openapi_server/impl/__pycache__/x.cpython-311.pyc",
        "src/openapi_server/x.pyc",
        "src/.pytest_cache/v/cache",
        "var/coldreach.db",
        ".venv/bin/python",
    ):
        assert ignored(path, rules), path
    for path in ("Dockerfile", "requirements.txt", "src/openapi_server/main.py"):
        assert not ignored(path, rules), path


def test_tag_changes_with_what_docker_sends_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text((APP / ".dockerignore").read_text())
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "m.py").write_text("x = 1\n")
    before = source_hash(tmp_path)
    (tmp_path / "src" / "pkg" / "__pycache__").mkdir()
    (tmp_path / "src" / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "app.db").write_bytes(b"\0")
    assert source_hash(tmp_path) == before, "caches and local data never change the tag"
    (tmp_path / "src" / "pkg" / "m.py").write_text("x = 2\n")
    assert source_hash(tmp_path) != before
    # A file Docker would send changes the tag even where the old name list said not.
    (tmp_path / "src" / "var").mkdir()
    changed = source_hash(tmp_path)
    (tmp_path / "src" / "var" / "data.txt").write_text("sent\n")
    assert source_hash(tmp_path) != changed


def test_app_context_is_what_the_tag_hashes() -> None:
    sent = {p.relative_to(APP).as_posix() for p in context_files(APP)}
    assert {"Dockerfile", "requirements.txt", ".dockerignore"} <= sent
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in sent)
