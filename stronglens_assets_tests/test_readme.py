"""README keeps exactly two set-up commands, and CI runs the README's test command."""

from __future__ import annotations

import re

from stronglens_assets.settings import PROJECT_ROOT


def _readme_commands() -> list[str]:
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_two_commands_demo_and_tests() -> None:
    demo, tests = _readme_commands()
    assert demo.endswith("stronglens demo")
    assert tests.endswith("python -m pytest")
    assert demo.startswith("bash scripts/install.sh") and tests.startswith(
        "bash scripts/install.sh"
    )
    install = (PROJECT_ROOT / "scripts" / "install.sh").read_text()
    assert "torch==2.13.0" in install and "--no-deps lenscat" in install


def test_ci_runs_the_readme_test_command() -> None:
    _, tests = _readme_commands()
    ci_lines = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci_lines
