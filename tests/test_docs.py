"""The docs against the code: every option they name exists, every relative link resolves, the README stays
short and links every page of docs/. Fast: only `logo ... --help` runs, no model, no store."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_BYTES = 15_000

OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")  # `*`, not `+`: one-letter options such as --k count too
# Options the docs name that belong to other tools, not to logo. Keep this small: a logo option that is
# missing from `--help` must fail, never be listed here.
OTHER_TOOLS = {
    "--slow",  # pytest: registered in tests/conftest.py, runs the reliability loops at full size
    "--path",  # chroma run --path DIR (docs/beyond-one-machine.md)
    "--host",  # chroma run --host
    "--port",  # chroma run, llama-server, python -m llama_cpp.server, vllm serve
    "--api-key",  # an LLM server started with --api-key
    "--logits",  # llama-cpp-python's server flag --logits_all (the option pattern stops at the underscore)
    "--py-files",  # spark-submit (docs/beyond-one-machine.md)
    "--conf",  # spark-submit --conf KEY=VALUE
    "--recursive",  # aws s3 cp --recursive (docs/beyond-one-machine.md)
    "--deploy-mode",  # spark-submit
}
BENCH = ROOT / "bench"  # the repo's own benchmark scripts: their options are read from their argparse calls
ARGPARSE_OPTION = re.compile(r"""add_argument\(\s*["'](--[a-z][a-z0-9-]*)["']""")

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# --- what logo accepts -------------------------------------------------------------------------------


HELP_PAGES = """
import json, runpy, sys
for command in json.loads(sys.argv[1]):
    print(SEPARATOR, flush=True)
    sys.argv = ["logo", *command, "--help"]
    try:
        runpy.run_module("logo_cli", run_name="__main__", alter_sys=True)
    except SystemExit as done:
        if done.code not in (0, None):
            sys.exit(f"`logo {' '.join(command)} --help` exited with {done.code}")
    sys.stdout.flush()
"""
SEPARATOR = "\x00--- next help page ---"


def help_pages(commands: list[tuple[str, ...]]) -> list[str]:
    """`python -m logo_cli COMMAND --help` for each command, in one interpreter (imports paid once)."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    script = HELP_PAGES.replace("SEPARATOR", repr(SEPARATOR))
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(commands)], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    pages = done.stdout.split(SEPARATOR + "\n")[1:]
    assert len(pages) == len(commands), done.stdout
    return pages


def section(text: str, title: str) -> list[str]:
    """The lines of one `Title:` section of a help page (click's layout, or rich's boxed panels): from its
    title to the next blank line or the next title."""
    lines: list[str] = []
    inside = False
    for line in text.splitlines():
        if re.fullmatch(rf"{title}:?", line.strip(" │╭╰─╮╯|")):
            inside = True
        elif inside and (not line.strip() or not line.startswith((" ", "\t", "│", "|", "╰"))):
            break
        elif inside:
            lines.append(line)
    return lines


def declared_options(text: str) -> set[str]:
    """Options a help page declares: the names at the start of each entry of its Options section (not the
    ones its descriptions mention)."""
    found: set[str] = set()
    for line in section(text, "Options"):
        entry = re.match(r"^[│| \t]{0,4}(-{1,2}[A-Za-z].*?)(?:\s{2,}|│|$)", line)
        if entry:
            found.update(OPTION.findall(entry.group(1)))
    return found


def subcommands(text: str) -> list[str]:
    names = []
    for line in section(text, "Commands"):
        entry = re.match(r"^[│| \t]{1,4}([a-z][a-z0-9-]*)(?:\s{2,}|\s*$)", line)
        if entry:
            names.append(entry.group(1))
    return names


@functools.cache
def logo_options() -> dict[str, str]:
    """Every option of `logo` and of each command and subcommand found from `logo --help` down, with the
    first command that declares it."""
    options: dict[str, str] = {}
    level: list[tuple[str, ...]] = [()]
    while level:
        next_level = []
        for command, text in zip(level, help_pages(level), strict=True):
            for option in declared_options(text):
                options.setdefault(option, " ".join(("logo", *command)))
            next_level += [(*command, name) for name in subcommands(text)]
        level = next_level
    return options


@functools.cache
def bench_options() -> frozenset[str]:
    return frozenset(o for script in BENCH.glob("*.py") for o in ARGPARSE_OPTION.findall(script.read_text()))


def test_help_pages_are_parsed() -> None:
    """Guards the parsing above: if the help layout changes, this fails before the docs test passes vacuously."""
    options = logo_options()
    assert {"--quiet", "--llm-url", "--batch-size", "--per-bucket", "--holdout", "--max-per-topic"} <= set(options)
    assert options["--holdout"] == "logo convert movielens"
    assert "--records" in bench_options()


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_option_in_the_docs_exists(page: Path) -> None:
    known = set(logo_options()) | bench_options() | OTHER_TOOLS
    text = page.read_text(encoding="utf-8")
    unknown: dict[str, int] = {}
    for match in OPTION.finditer(text):
        if match.group() not in known:
            unknown.setdefault(match.group(), text.count("\n", 0, match.start()) + 1)
    assert not unknown, "\n".join(
        f"{rel(page)}:{line}: {option} is not an option of any logo command (logo --help, logo COMMAND --help)"
        for option, line in unknown.items()
    )


# --- links -------------------------------------------------------------------------------------------


def without_code(text: str) -> str:
    """The text with fenced blocks blanked (keeping line numbers) and code spans reduced to their content."""
    text = FENCE.sub(lambda m: "\n" * m.group().count("\n"), text)
    return CODE_SPAN.sub(lambda m: m.group(2), text)


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lowercased, punctuation except - and _ dropped, spaces to -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = CODE_SPAN.sub(lambda m: m.group(2), text)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@functools.cache
def anchors(page: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        slug = github_slug(heading)
        out.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return frozenset(out)


def relative_links(page: Path) -> list[tuple[int, str]]:
    text = without_code(page.read_text(encoding="utf-8"))
    found = []
    for pattern in (INLINE_LINK, REFERENCE_LINK):
        for match in pattern.finditer(text):
            target = match.group(1)
            if not SCHEME.match(target):
                found.append((text.count("\n", 0, match.start()) + 1, target))
    return found


def test_slugs_follow_github() -> None:
    assert github_slug("`logo export` and `logo forget`") == "logo-export-and-logo-forget"
    assert (
        github_slug("Local memory on a Chroma server: --chroma-url") == "local-memory-on-a-chroma-server---chroma-url"
    )
    assert github_slug("How the mediator decides") == "how-the-mediator-decides"
    assert github_slug("Per_user (v2.0)!") == "per_user-v20"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for line, target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.exists():
            broken.append(f"{rel(page)}:{line}: {target}: no file {path_part}")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{rel(page)}:{line}: {target}: no heading #{anchor} in {rel(path)}")
    assert not broken, "\n".join(broken)


# --- the README's shape ------------------------------------------------------------------------------


def test_readme_is_short() -> None:
    size = len(README.read_bytes())
    assert size < README_MAX_BYTES, (
        f"README.md is {size:,} bytes; keep it under {README_MAX_BYTES:,} (move detail to docs/)"
    )


def test_readme_links_every_docs_page() -> None:
    linked = {(README.parent / target.partition("#")[0]).resolve() for _, target in relative_links(README)}
    missing = [rel(page) for page in sorted(DOCS.glob("*.md")) if page.resolve() not in linked]
    assert not missing, f"README.md links none of: {', '.join(missing)} (add them to its Documentation list)"


def test_no_machine_local_paths() -> None:
    """The docs name where public data comes from, never a folder of the machine they were written on."""
    offenders = [
        rel(path) for path in [README, *sorted(DOCS.rglob("*"))] if path.is_file() and b"../shared" in path.read_bytes()
    ]
    assert not offenders, f"`../shared` appears in: {', '.join(offenders)}"
