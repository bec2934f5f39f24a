"""The README and docs/ say only what is true of this checkout: every relative link leads to a file, every
`bench ...` command they name exists (its `--help` works), and the README's method example runs."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.paths import repo_root

ROOT = repo_root()
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
COMMAND = re.compile(r"(?:^|[`\s(])bench ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)")


def test_the_docs_exist_and_the_readme_is_a_short_guide():
    assert len(PAGES) >= 8
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_leads_to_a_file(page):
    missing = []
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.exists():
            missing.append(target)
    assert not missing, f"{page.name} links to missing files: {missing}"


def named_commands() -> set[tuple[str, ...]]:
    found = set()
    for page in PAGES:
        for words in COMMAND.findall(page.read_text()):
            found.add(tuple(words.split()))
    return found


def test_every_bench_command_the_docs_name_exists_and_has_help():
    commands = named_commands()
    assert ("run",) in {c[:1] for c in commands} and len(commands) > 10  # the scan finds what the docs say
    runner = CliRunner()
    problems = []
    for words in sorted(commands):
        group, path = main, []
        for word in words:
            sub = getattr(group, "commands", {}).get(word)
            if sub is None:
                break
            group, path = sub, path + [word]
        if not path:
            problems.append(f"bench {' '.join(words)}: no such command")
            continue
        result = runner.invoke(main, [*path, "--help"])
        if result.exit_code != 0:
            problems.append(f"bench {' '.join(path)} --help exited {result.exit_code}")
    assert not problems, problems


def test_the_readmes_method_example_registers_and_crafts_a_mask():
    text = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    check = code + (
        "\nfrom methods import create_method\n"
        "faces = torch.rand(4, 3, 112, 112)\n"
        "mask = create_method('signed-noise').craft_mask(faces, seed=1)\n"
        "assert mask.shape == (3, 112, 112) and torch.equal(mask, create_method('signed-noise').craft_mask(faces, seed=1))\n"
        "assert torch.allclose(mask.abs(), torch.full_like(mask, 4 / 255)) and (mask > 0).any() and (mask < 0).any()\n"
    )
    # a subprocess: registering the example in this process would add a method to every later test's registry
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
