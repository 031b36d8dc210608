"""The documentation cannot drift: the site builds strictly (no broken link, missing page or reference), every
`--flag` in a code block of the README and docs/ exists on the command it follows, the metadata table names every
field, and the README's commands run as shown."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import tomllib

from dermseg_deploy.model.metadata import METADATA_FIELDS, ModelMetadata

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
QUIET_MKDOCS = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
SKIPPED_README_COMMANDS = ("pip install", "scripts/test.sh", "scripts/demo.sh")
"""Not run here: installs from the package index; the test command itself; the demo (tests/test_demo.py runs it)."""


def _command(name: str) -> click.Command:
    module, attribute = COMMANDS[name].split(":")
    import importlib

    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command)
    return command


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block, those indented in a list item included."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", text, re.MULTILINE | re.DOTALL)]


def command_lines(body: str) -> list[str]:
    """The shell lines of a block, continuations joined and comments cut."""
    joined = re.sub(r"\\\n\s*", " ", body)
    lines = []
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def documented_flags() -> list[tuple[Path, str, str]]:
    """(file, command, flag) for every long flag after a dermseg command in a code block of the README and docs/."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for language, body in code_blocks(path.read_text(encoding="utf-8")):
            if language not in ("", "bash", "sh", "console"):
                continue
            for line in command_lines(body):
                for segment in re.split(r"\s*(?:&&|\|\||;|\|)\s*", line):
                    words = segment.split()
                    names = [w for w in words if Path(w).name in COMMANDS]
                    if not names:
                        continue
                    command = Path(names[0]).name
                    after = words[words.index(names[0]) + 1 :]
                    found += [(path, command, w.split("=")[0]) for w in after if w.startswith("--")]
    return found


def test_every_flag_in_the_documentation_exists_on_its_command() -> None:
    flags = documented_flags()
    assert len(flags) > 20  # the guides are full of them: a parser that found none would pass for nothing
    missing = []
    for path, command, flag in flags:
        known = {opt for param in _command(command).params for opt in getattr(param, "opts", [])} | {"--help", "--version"}
        if flag not in known:
            missing.append(f"{path.relative_to(ROOT)}: {command} {flag}")
    assert missing == []


def test_the_readme_links_resolve_in_the_repository() -> None:
    """The README is the repository's front page and the package's description: a link into a page the site makes
    at build time would be broken there."""
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text(encoding="utf-8"))
    assert links and [link for link in links if "://" not in link and not (ROOT / link).exists()] == []


def test_the_metadata_table_names_every_field() -> None:
    assert [name for name, _, _ in METADATA_FIELDS] == [f for f in ModelMetadata.__dataclass_fields__]


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    built = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                           capture_output=True, text=True, timeout=300, env=os.environ | QUIET_MKDOCS)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    site = tmp_path / "site"
    for page in ("index.html", "reference/commands/index.html", "reference/python/index.html",
                 "reference/exit-codes/index.html", "explanations/accuracy/index.html", "guides/export/index.html"):
        assert (site / page).is_file(), page
    commands = (site / "reference/commands/index.html").read_text(encoding="utf-8")
    assert all(name in commands for name in COMMANDS) and "--review-below" in commands  # generated from click
    assert "predicted_jaccard" in (site / "reference/python/index.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_readme_commands_run_as_shown(tmp_path: Path) -> None:
    """In a folder of their own, where the checkout's paths resolve (as they do in the checkout)."""
    (tmp_path / "dermseg_deploy").symlink_to(ROOT / "dermseg_deploy")
    bin_dir = Path(sys.executable).parent
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    ran = 0
    for language, body in code_blocks((ROOT / "README.md").read_text(encoding="utf-8")):
        if language == "python":
            done = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=300)
            assert done.returncode == 0, body + done.stderr[-2000:]
            ran += 1
            continue
        for line in command_lines(body):
            if line.startswith(SKIPPED_README_COMMANDS):
                continue
            done = subprocess.run(shlex.split(line), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, line + done.stderr[-2000:]
            ran += 1
    assert ran >= 3
    assert (tmp_path / "masks" / "manifest.csv").is_file() and (tmp_path / "report" / "index.html").is_file()
    shutil.rmtree(tmp_path / "masks")
