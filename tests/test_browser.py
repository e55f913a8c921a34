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
from contextlib import contextmanager
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
    """A JupyterLab server on the quickstart notebook; yields its base URL. Without Chromium every
    browser test fails, loudly (``make test`` installs it; a skip would count a missing browser as passing)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-deps` (make test installs it) to run the browser tests")
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


@contextmanager
def notebook_page(url: str, *, height: int) -> Iterator[Any]:
    """A headless Chromium page (1400 px wide) on the notebook at ``url`` with every cell run
    (:func:`run_all_cells`); the browser is closed at the end, whatever happened."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": height})
            run_all_cells(page, url)
            yield page
        finally:
            browser.close()


def test_browser_quickstart_submit_shows_success_and_pi(lab: str) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "browser-quickstart.png"
    with notebook_page(f"{lab}/lab/tree/01_submit_job.ipynb", height=2200) as page:
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
    assert shot.stat().st_size > 10_000


def _write_notebook(path: Path, cells: list[str]) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_browser_progress_moves_then_kill_from_the_app(lab: str, sandbox: Any, tmp_path: Path) -> None:
    """Submit a multi-stage job from the app, watch the progress bar and the clock move, kill it
    with Kill → Yes, and see the kill answered; a screenshot while it runs and one after the kill."""
    from playwright.sync_api import expect

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
    with notebook_page(f"{lab}/lab/tree/progress.ipynb", height=2000) as page:
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
    assert running_shot.stat().st_size > 10_000 and killed_shot.stat().st_size > 10_000


def _accordion_title(page: Any, title: str) -> Any:
    """The header of an ipywidgets Accordion pane (ipywidgets 8 draws it as a Lumino title)."""
    return page.locator(".jupyter-widget-Collapse-header, .lm-AccordionPanel-title, .p-Collapse-header",
                        has_text=title).first  # fmt: skip


def _image_drawn(page: Any, image: Any) -> list[int]:
    """Wait until ``image`` (an <img>) has loaded a picture; its natural [width, height]."""
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=image.element_handle(),
                           timeout=60_000)  # fmt: skip
    return list(image.evaluate("el => [el.naturalWidth, el.naturalHeight]"))


def test_browser_log_storm_note_then_kill_from_history_and_the_timeline(
    lab: str, sandbox: Any, tmp_path: Path
) -> None:
    """Submit LogStorm (far more lines than Livy's 200-line window, still printing when killed) from the
    app, see the dropped-lines note in the log panel, open the history pane, Refresh, see the batch
    running at the top (newest first) and the timeline drawn, Kill it from the history panel, and see
    what Apache Livy does: the list read again no longer holds it (a DELETE drops the batch's record),
    or holds it killed, and the note says which; the app's own status ends killed or purged.

    What the screenshots showed (looked at when this test passed alone, 2026-12-02 16:23 UTC):
    ``browser-history-timeline.png`` (after the first Refresh): the app with batch 3
    ``browser-storm-…`` running, elapsed 11 s, the log panel's yellow note "Livy keeps only the last
    200 lines of each stream: earlier lines were dropped before they could be read" above stderr lines
    numbered past 1,800; the pane "Cluster batch history: filters, actions, timeline" with "batches 1–1
    of 1, newest first", one row ``3 ★ browser-storm-… running`` (★: submitted here), elapsed 0:05,
    submitted 16:23:24, a Spark UI link, Kill enabled; under Timeline a picture titled "0 batch(es)
    with the service's times, 1 with the times this notebook saw (polls, not the service's own
    record)": one row for batch 3, a grey "waiting" bar from :24 to :28 and a blue "running" bar from
    :28 to :34 (Apache Livy sends no times: these are the app's own reads), legend running/waiting.
    ``browser-history-after-kill.png``: the table empty ("the service lists no batches", "no batch on
    this page matches the filters"), the green note "Batch 3 was killed and is no longer listed: the
    service dropped its record (Apache Livy forgets a batch it deletes), so its state and log are gone
    with it", no timeline picture; the app's status above says ``purged`` in grey with the red sentence
    "Batch 3 was killed; the Livy server no longer lists it.", Kill disabled; the poller line still
    names its last error ("Batch 3 not found: it was purged after Livy's retention time"), left as it
    is. In the full suite the newest page also holds other tests' batches, so there the table and the
    picture stay. ``browser-history-fabric-timeline.png`` (the Fabric app's panel): three rows
    ``fab-2``, ``fab-1``, ``fab-0`` (UUID ids) dead, submitted at the same second, and a timeline with
    three short red bars, one per batch, staggered left to right fab-0 → fab-2, legend "dead" and
    "waiting", the time axis in milliseconds ("28.775" …) with the date "2026-Dec-02 15:00" under it.
    Earlier runs of this test showed the table headers run
    together, a broken-image icon after the kill and an empty date axis from 1970: fixed in history.py."""
    from playwright.sync_api import expect

    from hdiaks_widgets.sandbox.apps import LOG_STORM_CLASS

    _write_notebook(tmp_path / "work" / "storm.ipynb", [
        "from hdiaks_widgets import BatchSpec, ClusterProfile, JobConfig, app\n"
        f"cfg = JobConfig(profile=ClusterProfile(name='sandbox', flavour='sandbox', url={sandbox.url!r}),\n"
        f"                spec=BatchSpec(file={sandbox.examples['jar']!r}, class_name={LOG_STORM_CLASS!r},\n"
        "                               args=('100000000',), name='browser-storm'))\n"
        "ui = app(cfg, progress_interval=0.5)\n"
        "ui",
        # Fabric gives a time per state (Apache Livy's batch object has none): three short batches on
        # the sandbox's Fabric paths and the same history panel of an app on that profile.
        "import time, uuid\n"
        "from hdiaks_widgets import LivyClient\n"
        f"fab = ClusterProfile(name='fab', flavour='fabric', url={sandbox.url!r}, auth='none',\n"
        "                     workspace_id=str(uuid.uuid4()), lakehouse_id=str(uuid.uuid4()))\n"
        "fab_client = LivyClient.from_profile(fab)\n"
        "missing = 'abfss://x@onelake.dfs.fabric.microsoft.com/nope/missing.py'\n"
        "fab_ids = [fab_client.submit_batch(JobConfig(profile=fab, spec=BatchSpec(file=missing, name=f'fab-{i}'))\n"
        "                                   .batch_spec).id for i in range(3)]\n"
        "while not all(fab_client.get_batch(i).state.is_terminal for i in fab_ids):\n"
        "    time.sleep(0.3)\n"
        "fab_ui = app(JobConfig(profile=fab, spec=BatchSpec(file=missing)), profiles={})\n"
        "fab_ui.batch_history.widget",
    ])  # fmt: skip
    ARTIFACTS.mkdir(exist_ok=True)
    fabric_shot = ARTIFACTS / "browser-history-fabric-timeline.png"
    listed_shot = ARTIFACTS / "browser-history-timeline.png"
    shot = ARTIFACTS / "browser-history-after-kill.png"
    with notebook_page(f"{lab}/lab/tree/storm.ipynb", height=2400) as page:
        submit = page.locator("button.hdiaks-submit")
        expect(submit).to_be_enabled(timeout=120_000)
        submit.click()

        # The storm overflows Livy's window: the log panel says lines were dropped.
        running = page.locator(".hdiaks-status .hdiaks-state[data-state='running']")
        running.wait_for(timeout=240_000)
        log_panel = page.locator(".widget-vbox:has(> .hdiaks-log-notice)").first
        log_panel.wait_for(state="attached", timeout=60_000)
        if not log_panel.is_visible():  # the Driver log section is collapsed: open it
            _accordion_title(page, "Driver log").click()
        expect(log_panel).to_be_visible(timeout=30_000)
        expect(page.locator(".hdiaks-log-notice .hdiaks-log-note")).to_contain_text(
            "Livy keeps only the last", timeout=120_000)
        expect(running).to_be_attached()

        # History: open the pane, Refresh; the storm is the newest batch, running; the timeline is drawn.
        _accordion_title(page, "Cluster batch history: filters, actions, timeline").click()
        panel = page.locator(".hdiaks-history-panel").first
        expect(panel).to_be_visible(timeout=30_000)
        panel.locator("button.hdiaks-history-refresh").click()
        rows = panel.locator(".hdiaks-history-rows")
        expect(rows).to_contain_text("browser-storm", timeout=60_000)
        expect(rows.locator("tr").nth(1)).to_contain_text("browser-storm")  # the first row: newest first
        expect(panel).to_contain_text("newest first")
        image = panel.locator("img.hdiaks-history-timeline")
        expect(image).to_be_visible(timeout=60_000)
        natural = _image_drawn(page, image)
        assert natural[0] >= 300 and natural[1] >= 100, natural
        box = image.bounding_box()
        assert box is not None and box["width"] >= 300 and box["height"] >= 80, box
        panel.scroll_into_view_if_needed()
        page.screenshot(path=str(listed_shot), full_page=True)

        chooser = panel.locator(".widget-dropdown", has_text="Batch").locator("select")
        labels = chooser.locator("option").all_inner_texts()
        storm = [label for label in labels if "browser-storm" in label]
        assert len(storm) == 1 and storm[0].endswith("running"), labels
        storm_id = storm[0].split("·")[0].strip()  # "<id> · <name> · <state>"
        chooser.select_option(label=storm[0])
        kill = panel.locator("button.hdiaks-history-kill")
        expect(kill).to_be_enabled(timeout=30_000)
        kill.click()

        # Apache Livy answers the DELETE once the batch is stopped and its record dropped: the list
        # read again no longer holds it (or, on a service that keeps it, shows it killed).
        note = panel.locator(".hdiaks-history-note")
        expect(note).to_contain_text(f"Batch {storm_id} was killed", timeout=60_000)
        said = note.inner_text()
        assert "Refresh shows" not in said, said
        if "no longer listed" in said:
            expect(rows).not_to_contain_text("browser-storm")
            assert not [label for label in chooser.locator("option").all_inner_texts() if "browser-storm" in label]
        else:
            assert "the list shows it killed" in said, said
            expect(rows).to_contain_text("killed")
        ended = page.locator(".hdiaks-status .hdiaks-state[data-state='killed'], "
                             ".hdiaks-status .hdiaks-state[data-state='purged']")  # fmt: skip
        ended.first.wait_for(timeout=120_000)
        # No rows, no picture; in the full suite the shared sandbox's newest page holds other tests' batches.
        timeline = panel.locator("img.hdiaks-history-timeline")
        if "no batch on this page matches" in rows.inner_text():  # the page shows no batch
            expect(timeline).to_be_hidden()
        else:
            expect(timeline).to_be_visible()
        panel.scroll_into_view_if_needed()
        page.screenshot(path=str(shot), full_page=True)

        # The Fabric app's history panel: Refresh, three rows newest first, a timeline with their bars.
        fabric = page.locator(".hdiaks-history-panel").nth(1)
        fabric.scroll_into_view_if_needed()
        fabric.locator("button.hdiaks-history-refresh").click()
        fabric_rows = fabric.locator(".hdiaks-history-rows")
        expect(fabric_rows).to_contain_text("fab-2", timeout=60_000)
        expect(fabric_rows.locator("tr").nth(1)).to_contain_text("fab-2")
        expect(fabric_rows.locator("tr").nth(3)).to_contain_text("fab-0")
        fabric_image = fabric.locator("img.hdiaks-history-timeline")
        expect(fabric_image).to_be_visible(timeout=60_000)
        natural = _image_drawn(page, fabric_image)
        assert natural[0] >= 300 and natural[1] >= 100, natural
        fabric.screenshot(path=str(fabric_shot))
    assert listed_shot.stat().st_size > 10_000 and shot.stat().st_size > 10_000
    assert fabric_shot.stat().st_size > 10_000
