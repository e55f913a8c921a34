"""README drift test: the README's shell and Python examples run in order, twice, on the sandbox.

The examples are taken from the README as written. Only two things are changed: the sandbox's
address (the README says ``127.0.0.1:8998``; the test's sandbox has a free port) and lines that
start a sandbox (``hdiaks sandbox ...``), because the session's sandbox is already running. The
``make`` blocks (``make demo``, ``make test``) are the commands that run this very suite and are
left out. Running everything twice in the same directory proves the examples do not collide with
their own earlier run (job names within Livy's retention, files that already exist).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SandboxHandle

pytestmark = [pytest.mark.spark]

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_ADDRESS = "127.0.0.1:8998"
_BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.M | re.S)


def readme_blocks() -> list[tuple[str, str]]:
    """Every fenced bash/python block of the README, in order, except the ``make`` blocks."""
    blocks = []
    for lang, body in _BLOCK.findall(README.read_text(encoding="utf-8")):
        commands = [ln for ln in body.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        if lang == "bash" and commands and all(ln.lstrip().startswith("make ") for ln in commands):
            continue
        blocks.append((lang, body))
    return blocks


def _shell(body: str, address: str) -> str:
    lines = []
    for line in body.splitlines():
        if re.match(r"\s*hdiaks sandbox\b", line):
            lines.append(f"# (the test's sandbox is running) {line}")
        else:
            lines.append(line.replace(README_ADDRESS, address))
    return "\n".join(lines) + "\n"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HDIAKS_", "AZURE_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env


def test_the_readme_has_shell_and_python_examples() -> None:
    langs = [lang for lang, _ in readme_blocks()]
    assert "bash" in langs and "python" in langs, langs


def test_the_readme_lists_every_exit_code_the_cli_returns() -> None:
    from hdiaks_widgets import cli

    codes = {v for k, v in vars(cli).items() if k.startswith("EXIT_") and isinstance(v, int)}
    text = README.read_text(encoding="utf-8")
    sentence = text[text.index("Exit codes:") :].split("Every failure")[0]
    assert codes and codes == {int(n) for n in re.findall(r"\b(\d+) [A-Za-z(]", sentence)}, sentence


def test_readme_examples_run_in_order_twice_on_the_sandbox(sandbox: SandboxHandle, tmp_path: Path) -> None:
    address = sandbox.url.split("://", 1)[1]
    env = _env()
    env["HDIAKS_PROFILES"] = str(tmp_path / "profiles.json")
    python_parts = []
    for number, (lang, body) in enumerate(readme_blocks()):
        if lang == "bash":
            script = tmp_path / f"block{number}.sh"
            script.write_text("set -euo pipefail\n" + _shell(body, address), encoding="utf-8")
        else:
            python_parts.append(body.replace(README_ADDRESS, address))
    (tmp_path / "guide.py").write_text("\n".join(python_parts), encoding="utf-8")
    scripts = sorted(tmp_path.glob("block*.sh"), key=lambda p: int(p.stem[5:]))
    assert scripts, "no shell examples left to run"
    for attempt in (1, 2):
        for script in scripts:
            done = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=600)  # fmt: skip
            assert done.returncode == 0, (
                f"run {attempt}: README block {script.name} failed ({done.returncode}):\n"
                f"{script.read_text()}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
            )
            assert "Traceback" not in done.stderr, done.stderr
        done = subprocess.run([sys.executable, "guide.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, (
            f"run {attempt}: the README's Python examples failed ({done.returncode}):\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )
