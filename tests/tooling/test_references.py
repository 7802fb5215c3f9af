"""Every repository file a comment or a document names exists.

Scanned: Markdown documents whole; in Python files, comments and docstrings; in
YAML, TOML, Makefile, Dockerfile and shell files, comments. A name is a path
with a known file extension (`coldreach/cost.py`, `README.md`) or a directory
path ending in `/` under a top-level directory. A path names a file when it
resolves from the repository root or from the naming file's directory, or when
a tracked file ends with it (`emulator/ec2.py`); a bare file name, when some
tracked file has that name. Not names: URLs, placeholders (`Pulumi.<stack>.yaml`,
`PREVIEW.json`), files the documented commands write (`preview.json`, anything
under an ignored directory such as `var/`).
"""

from __future__ import annotations

import ast
import io
import itertools
import re
import subprocess
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXTENSIONS = ("py", "md", "yaml", "yml", "json", "toml", "txt", "ini", "sh", "cfg", "lock")
NAME = re.compile(
    r"(?<![\w/.@:-])((?:\.\./|\./)*(?:[\w.-]+/)*[\w-][\w.-]*\.(?:" + "|".join(EXTENSIONS) + r")"
    r"|(?:[\w.-]+/)+)(?![\w/-])"
)
URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+|\bgithub\.com/\S+|\b[\w-]+\.(?:com|org|io|dev)/\S+")
HASH_COMMENTS = {".yaml", ".yml", ".toml", ".sh", ".cfg", ".ini"}
# Upper-case words the commands' usage lines stand for (`coldreach gate PREVIEW.json`).
PLACEHOLDERS = {"STACK", "PREVIEW", "FILE"}
# Written by commands the documents show (`pulumi preview --json > preview.json`,
# `pulumi stack output --json > outputs.json`).
PRODUCED = {"preview.json", "outputs.json"}


def tracked() -> list[str]:
    done = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [p for p in done.stdout.splitlines() if (ROOT / p).exists()]


def python_prose(text: str) -> str:
    parts: list[str] = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            parts.append(token.string)
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                parts.append(doc)
        # Attribute docstrings: a string statement right after an assignment.
        body = getattr(node, "body", None)
        if isinstance(body, list):
            for before, after in itertools.pairwise(body):
                if isinstance(before, ast.Assign | ast.AnnAssign) and _is_string(after):
                    parts.append(after.value.value)  # type: ignore[attr-defined]
    return "\n".join(parts)


def _is_string(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def hash_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[1] for line in text.splitlines() if "#" in line)


def prose(path: str) -> str:
    text = (ROOT / path).read_text(errors="replace")
    name = Path(path).name
    if path.endswith(".md"):
        return text
    if path.endswith(".py"):
        return python_prose(text)
    if (
        Path(path).suffix in HASH_COMMENTS
        or name in ("Makefile", "Dockerfile")
        or path.startswith(".ci/")
    ):
        return hash_comments(text)
    return ""


def names(text: str) -> set[str]:
    text = URL.sub(" ", text)
    found = set()
    for match in NAME.finditer(text):
        name = match.group(1).rstrip(".")
        stem = Path(name.rstrip("/")).name.split(".", 1)[0]
        if any(c in name for c in "<>*{}$") or stem in PLACEHOLDERS:
            continue
        found.add(name)
    return found


def ignored(names: set[str]) -> set[str]:
    """The names git ignores (`var/demo.json`): output of the commands, never committed."""
    paths = {name: name.lstrip("./") for name in names}
    done = subprocess.run(
        ["git", "check-ignore", "--stdin", "--no-index"],
        cwd=ROOT,
        input="\n".join(paths.values()),
        capture_output=True,
        text=True,
    )
    found = set(done.stdout.splitlines())
    return {name for name, path in paths.items() if path in found}


def exists(name: str, source: str, files: list[str], dirs: set[str]) -> bool:
    if name in PRODUCED:
        return True
    for start in (ROOT, (ROOT / source).parent):
        candidate = (start / name).resolve()
        if candidate.is_relative_to(ROOT) and candidate.exists():
            return True
    clean = name.lstrip("./").rstrip("/")
    if name.endswith("/"):
        # A directory path counts when it starts at one of ours (`app/src/`), not `s3://b/`.
        ours = clean.split("/", 1)[0] in {d.split("/", 1)[0] for d in dirs}
        return not ours or any(d == clean or d.endswith("/" + clean) for d in dirs)
    if "/" not in clean:
        return any(Path(f).name == clean for f in files)
    return any(f == clean or f.endswith("/" + clean) for f in files)


def dangling() -> list[str]:
    files = tracked()
    dirs = {str(Path(f).parent) for f in files} | {f.split("/", 1)[0] for f in files}
    missing: list[tuple[str, str]] = []
    for source in files:
        if source == "uv.lock" or source.startswith("tests/promotion/previews/"):
            continue
        for name in sorted(names(prose(source))):
            if not exists(name, source, files, dirs):
                missing.append((source, name))
    produced = ignored({name for _, name in missing})
    return [f"{source}: {name}" for source, name in missing if name not in produced]


def test_every_named_file_exists() -> None:
    assert dangling() == []


def test_a_missing_file_is_reported() -> None:
    text = "See DESIGN.md and research/iac_style.md; coldreach/cost.py is real, STACK.json not."
    assert names(text) == {"DESIGN.md", "research/iac_style.md", "coldreach/cost.py"}
    files = tracked()
    dirs = {str(Path(f).parent) for f in files}
    assert not exists("DESIGN.md", "README.md", files, dirs)
    assert not exists("../shared/research/iac_style.md", "coldreach/x.py", files, dirs)
    assert exists("coldreach/cost.py", "README.md", files, dirs)
    assert exists("emulator/ec2.py", "README.md", files, dirs)
