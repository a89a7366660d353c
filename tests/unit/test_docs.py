"""The documentation is true of the code where it can drift: what it names exists.

Read from the files alone (no server is started, nothing is run but the ops tool's
own argument parser):

* every `make <target>` the Markdown names is a target of the Makefile, and every
  target with a ``##`` help line is named in README.md or docs/;
* every `zt <command>` / `python -m scripts.zt <command>` it names parses with the
  parser ``scripts.cli.main`` builds (command, choices, options), and every command of
  that parser is named in README.md or docs/;
* verifier/README.md's reason-code table lists exactly the reason codes of
  verifier/errors.py (every ``reason = "..."`` of a leaf class), each with the status
  its class inherits;
* every relative link resolves to a file, and a ``#fragment`` to one of its headings;
* README.md stays short, and keeps the blocks the integration tests run.

Commands and targets are read from code only (inline spans and fenced blocks), where
documents write them; prose ("make sure") is not a command.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import itertools
import os
import re
from pathlib import Path
from unittest import mock

from scripts import cli

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS_DIR = REPO / "docs"
MAKEFILE = REPO / "Makefile"
ERRORS = REPO / "verifier" / "errors.py"
VERIFIER_README = REPO / "verifier" / "README.md"
README_MAX_LINES = 220
# Blocks of README.md that integration tests extract and run verbatim.
README_MARKERS = {
    "<!-- curl-walkthrough -->": "tests/integration/test_request_path.py",
    "<!-- terraform-by-hand -->": "tests/integration/test_terraform_by_hand.py",
}

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)
MAKE = re.compile(r"(?<![\w./$-])make\s+([a-z][a-z0-9-]*)")
ZT = re.compile(r"(?:python -m scripts\.zt|(?<![\w./-])zt)[ \t]+([^\n`#;&)]*)")
MAKE_TARGET = re.compile(r"^([a-z][a-z0-9-]*)\s*:(?!=)(.*)$", re.M)
REASON_ROW = re.compile(r"^\| `([a-z_]+)` \| (\d{3}) \|", re.M)
PLACEHOLDER = re.compile(r"^<[^>]+>$")


# --- the documents ------------------------------------------------------------------


def markdown_files() -> list[Path]:
    """Every Markdown file of the checkout, outside dot-folders (.state, .venv, .git)."""
    found = []
    for folder, dirs, files in os.walk(REPO):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / f for f in sorted(files) if f.endswith(".md")]
    return found


def user_docs() -> list[Path]:
    """README.md and docs/: where a make target or a zt command must be documented."""
    return [README, *sorted(DOCS_DIR.rglob("*.md"))]


def code_of(text: str) -> list[str]:
    """The code in a Markdown text: fenced blocks (shell comments dropped) and inline
    spans, with a table's escaped ``\\|`` read as ``|``."""
    fenced = [re.sub(r"(^|\s)#.*$", "", block, flags=re.M) for block in FENCE.findall(text)]
    inline = [span for _, span in INLINE_CODE.findall(FENCE.sub("", text))]
    return [code.replace("\\|", "|") for code in fenced + inline]


def prose_of(text: str) -> str:
    """The text without fenced blocks and inline code (where links and headings live)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


# --- make ---------------------------------------------------------------------------


def makefile_targets() -> dict[str, bool]:
    """Every target of the Makefile -> whether it has a ``##`` help line."""
    return {m[1]: "## " in m[2] for m in MAKE_TARGET.finditer(MAKEFILE.read_text())}


def make_mentions(files: list[Path]) -> set[tuple[str, str]]:
    return {
        (rel(path), target)
        for path in files
        for code in code_of(path.read_text())
        for target in MAKE.findall(code)
    }


def test_every_make_target_the_docs_name_exists():
    targets = makefile_targets()
    unknown = sorted(m for m in make_mentions(markdown_files()) if m[1] not in targets)
    assert not unknown, f"`make <target>` with no such Makefile target: {unknown}"


def test_every_make_target_with_a_help_line_is_documented():
    named = {target for _, target in make_mentions(user_docs())}
    helped = {target for target, has_help in makefile_targets().items() if has_help}
    assert helped, "no Makefile target with a ## help line found"
    assert not helped - named, f"not named in README.md or docs/: {sorted(helped - named)}"


# --- zt -----------------------------------------------------------------------------


class _Parsed(Exception):
    """Raised in place of parsing: carries the parser ``scripts.cli.main`` built."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__("parser captured")
        self.parser = parser


def zt_parser() -> argparse.ArgumentParser:
    """The ops tool's real parser, as ``scripts.cli.main`` builds it; main stops at its
    ``parse_args`` call, so no command runs."""

    def capture(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise _Parsed(self)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", capture):
        try:
            cli.main([])
        except _Parsed as parsed:
            return parsed.parser
    raise AssertionError("scripts.cli.main returned without parsing its arguments")


def zt_commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each command of the parser -> its own parser."""
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def argvs(rest: str) -> list[list[str]]:
    """The command lines a documented ``zt <rest>`` stands for: ``a|b`` is each of a and
    b, ``<placeholder>`` a value, ``[--option]`` the option; ``…`` ends the example.
    ``zt <command>`` names no command."""
    words: list[list[str]] = []
    for word in re.split(r"\s+", rest.strip()):
        if word in ("", "…", "...") or word.startswith(("|", "<<", ">")):
            break
        word = word.strip("[]")
        if PLACEHOLDER.match(word):
            if not words:
                return []
            word = "x"
        words.append(word.split("|") if "|" in word and not word.startswith("-") else [word])
    return [list(argv) for argv in itertools.product(*words)] if words else []


def zt_mentions(files: list[Path]) -> list[tuple[str, list[str]]]:
    return [
        (rel(path), argv)
        for path in files
        for code in code_of(path.read_text())
        for rest in ZT.findall(code)
        for argv in argvs(rest)
    ]


def _complaint(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """None if ``argv`` parses (or asks for help), else argparse's complaint."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(argv)
        except SystemExit as e:
            return None if e.code == 0 else err.getvalue().strip().splitlines()[-1]
    return None


def parse_problem(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """None if ``zt <argv>`` parses, or names a command and some of its arguments
    (``zt revoke --disable-client``, ``zt rotate client``): each option it names is one
    of the command's and each positional is accepted (``--help`` appended, argparse
    checks positionals and choices before it shows help). Else the complaint."""
    problem = _complaint(parser, argv)
    if problem is None or "arguments are required" not in problem:
        return problem
    command = zt_commands(parser)[argv[0]]  # it parsed that far, so it exists
    for word in argv[1:]:
        option = word.split("=", 1)[0]
        if option.startswith("-") and option not in command._option_string_actions:
            return f"{argv[0]} has no option {option}"
    return _complaint(parser, [*argv, "--help"])


def test_every_zt_command_the_docs_name_parses():
    parser = zt_parser()
    mentions = zt_mentions(markdown_files())
    assert mentions, "no zt command found in the documents"
    problems = [
        f"{where}: zt {' '.join(argv)}: {problem}"
        for where, argv in mentions
        if (problem := parse_problem(parser, argv))
    ]
    assert not problems, "\n".join(problems)


def test_every_zt_command_is_documented():
    named = {argv[0] for _, argv in zt_mentions(user_docs())}
    missing = set(zt_commands(zt_parser())) - named
    assert not missing, f"zt commands named nowhere in README.md or docs/: {sorted(missing)}"


# --- the verifier's reason codes ----------------------------------------------------


def _own_constant(cls: ast.ClassDef, name: str) -> object | None:
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign):
            targets = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            targets = [stmt.target.id]
        else:
            continue
        if name in targets and isinstance(stmt.value, ast.Constant):
            return stmt.value.value
    return None


def reason_codes() -> dict[str, int]:
    """Every ``reason = "..."`` of a leaf class of verifier/errors.py -> the status its
    class sets or inherits (a base class's reason is only a default)."""
    tree = ast.parse(ERRORS.read_text())
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    bases = {b.id for c in classes.values() for b in c.bases if isinstance(b, ast.Name)}

    def status(name: str) -> object | None:
        own = _own_constant(classes[name], "status")
        if own is not None:
            return own
        inherited = (
            status(base.id)
            for base in classes[name].bases
            if isinstance(base, ast.Name) and base.id in classes
        )
        return next((found for found in inherited if found is not None), None)

    return {
        reason: status(name)
        for name, cls in classes.items()
        if name not in bases and isinstance(reason := _own_constant(cls, "reason"), str)
    }


def reason_table() -> list[tuple[str, int]]:
    text = VERIFIER_README.read_text()
    section = text.split("\n## Reason codes\n", 1)[1].split("\n## ", 1)[0]
    return [(code, int(status)) for code, status in REASON_ROW.findall(section)]


def test_the_verifier_readme_lists_exactly_the_reason_codes_of_errors_py_with_their_status():
    rows = reason_table()
    codes = reason_codes()
    assert "token_expired" in codes and "binding_cn_mismatch" in codes, codes
    assert len(rows) == len(dict(rows)), "a reason code is listed twice"
    assert dict(rows) == codes


# --- links --------------------------------------------------------------------------


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    anchors: set[str] = set()
    for _, title in HEADING.findall(FENCE.sub("", path.read_text())):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).lower()
        base = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        anchor, n = base, 0
        while anchor in anchors:
            n += 1
            anchor = f"{base}-{n}"
        anchors.add(anchor)
    return anchors


def link_problems(path: Path) -> list[str]:
    problems = []
    for target in LINK.findall(prose_of(path.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            problems.append(f"{rel(path)}: {target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in heading_anchors(resolved):
            problems.append(f"{rel(path)}: {target}: no such heading")
    return problems


def test_every_relative_link_points_to_an_existing_file_and_heading():
    problems = [p for path in markdown_files() for p in link_problems(path)]
    assert not problems, "\n".join(problems)


# --- the README ---------------------------------------------------------------------


def test_the_readme_stays_short():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_the_readme_keeps_the_blocks_the_integration_tests_run():
    text = README.read_text()
    for marker, test in README_MARKERS.items():
        assert text.count(marker) == 1, f"{marker} (run by {test}) must appear once"
        after = text.split(marker, 1)[1].lstrip("\n")
        assert after.startswith("```sh\n"), f"{marker} must be followed by a ```sh block"
