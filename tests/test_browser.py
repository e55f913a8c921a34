"""The quickstart in a real browser: JupyterLab in headless Chromium, a real Spark job on the sandbox.

JupyterLab runs as a subprocess on a free loopback port (no token) and is stopped by its PID.
Chromium is Debian's (``mk/browser.mk`` installs it); playwright only drives it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

pytestmark = [pytest.mark.browser, pytest.mark.spark]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quiet_lab_settings(settings: Path) -> None:
    """No news or update pop-ups over the notebook."""
    target = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8")


@pytest.fixture
def lab(sandbox: Any, tmp_path: Path) -> Iterator[str]:
    """A JupyterLab server on the quickstart notebook; yields its base URL."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / "01_submit_job.ipynb", work / "01_submit_job.ipynb")
    env = {k: v for k, v in os.environ.items() if k != "HDIAKS_AUTOSUBMIT"}
    env.update({
        "HDIAKS_SANDBOX_URL": sandbox.url,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
    })  # fmt: skip
    _quiet_lab_settings(tmp_path / "settings")
    port = _free_port()
    log_path = tmp_path / "jupyterlab.log"
    cmd = [
        sys.executable, "-m", "jupyterlab", "--allow-root", "--IdentityProvider.token=", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--ServerApp.root_dir={work}",
        "--ServerApp.port_retries=0",
    ]  # fmt: skip
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        http = requests.Session()
        http.trust_env = False
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"jupyter lab exited:\n{log_path.read_text()}")
            try:
                if http.get(f"{base}/api/status", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"jupyter lab did not start:\n{log_path.read_text()}")
            time.sleep(0.3)
        yield base
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def run_all_cells(page: Any, url: str) -> None:
    """Open ``url`` (a notebook in JupyterLab), accept the default kernel if JupyterLab asks which
    one to start, wait until the kernel is idle and run every cell (Run ▸ Run All Cells)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    page.goto(url)
    page.locator(".jp-Notebook").first.wait_for(timeout=120_000)
    choose = page.locator(".jp-Dialog").get_by_role("button", name="Select Kernel")
    try:
        choose.wait_for(timeout=10_000)
        choose.click()
    except PlaywrightTimeout:
        pass
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first).to_be_attached(timeout=120_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (make browser-deps)")
def test_browser_quickstart_submit_shows_success_and_pi(lab: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "browser-quickstart.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            run_all_cells(page, f"{lab}/lab/tree/01_submit_job.ipynb")
            page.get_by_text("Nothing submitted yet").first.wait_for(timeout=180_000)

            submit = page.locator("button.hdiaks-submit")
            expect(submit).to_be_enabled(timeout=60_000)
            submit.click()

            success = page.locator(".hdiaks-status .hdiaks-state[data-state='success']")
            success.wait_for(timeout=300_000)
            expect(page.locator(".hdiaks-log")).to_contain_text("Pi is roughly", timeout=60_000)
            expect(page.locator(".hdiaks-batches")).to_contain_text("success")
            page.locator(".hdiaks-log-table td", has_text="Pi is roughly").first.scroll_into_view_if_needed()
            page.locator(".hdiaks-status").scroll_into_view_if_needed()
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000


def _write_notebook(path: Path, cells: list[str]) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (make browser-deps)")
def test_browser_progress_moves_then_kill_from_the_app(lab: str, sandbox: Any, tmp_path: Path) -> None:
    """Submit a multi-stage job from the app, watch the progress bar and the clock move, kill it
    with Kill → Yes, and see the kill answered; a screenshot while it runs and one after the kill."""
    from playwright.sync_api import expect, sync_playwright

    _write_notebook(tmp_path / "work" / "progress.ipynb", [
        "from hdiaks_widgets import BatchSpec, ClusterProfile, JobConfig, app\n"
        f"cfg = JobConfig(profile=ClusterProfile(name='sandbox', flavour='sandbox', url={sandbox.url!r}),\n"
        f"                spec=BatchSpec(file={sandbox.examples['stages_py']!r}, args=('12', '2.5'),\n"
        "                               name='browser-progress'))\n"
        "ui = app(cfg, progress_interval=0.5)\n"
        "ui",
    ])  # fmt: skip
    ARTIFACTS.mkdir(exist_ok=True)
    running_shot = ARTIFACTS / "browser-progress-running.png"
    killed_shot = ARTIFACTS / "browser-progress-killed.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            run_all_cells(page, f"{lab}/lab/tree/progress.ipynb")
            submit = page.locator("button.hdiaks-submit")
            expect(submit).to_be_enabled(timeout=120_000)
            submit.click()

            # The progress bar with Spark's numbers, and the clock ticking on its own.
            percent = page.locator(".hdiaks-progress-percent")
            expect(percent).to_contain_text("%", timeout=240_000)
            seen: list[str] = []
            clocks: list[str] = []
            for _ in range(60):
                text = percent.inner_text()
                if text not in seen:
                    seen.append(text)
                clock = page.locator(".hdiaks-elapsed").inner_text()
                if clock not in clocks:
                    clocks.append(clock)
                if len(seen) >= 3 and len(clocks) >= 3:
                    break
                page.wait_for_timeout(700)
            assert len(seen) >= 3, seen
            assert len(clocks) >= 3, clocks
            expect(page.locator(".hdiaks-progress-detail")).to_contain_text("jobs ")
            page.locator(".hdiaks-progress-panel").scroll_into_view_if_needed()
            page.screenshot(path=str(running_shot))

            page.locator("button.hdiaks-kill").click()
            page.locator("button.hdiaks-kill-yes").click()
            expect(page.locator(".hdiaks-message")).to_contain_text("Kill requested", timeout=60_000)
            ended = page.locator(".hdiaks-status .hdiaks-state[data-state='killed'], "
                                 ".hdiaks-status .hdiaks-state[data-state='purged']")  # fmt: skip
            ended.first.wait_for(timeout=120_000)
            expect(page.locator("button.hdiaks-kill")).to_be_disabled(timeout=30_000)
            expect(page.locator(".hdiaks-poller-stats")).to_contain_text("requests/min", timeout=30_000)
            page.locator(".hdiaks-status").scroll_into_view_if_needed()
            page.screenshot(path=str(killed_shot))
        finally:
            browser.close()
    assert running_shot.stat().st_size > 10_000 and killed_shot.stat().st_size > 10_000
