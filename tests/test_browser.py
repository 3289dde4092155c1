"""JupyterLab as students use it, in a real browser: Debian's Chromium driven by Playwright.

The test starts JupyterLab on 127.0.0.1 with a token, on copies of notebooks 00, 02 and 07 (so
JupyterLab's autosave never touches ``notebooks/``), runs every cell of each as it opens (the
course profile: the shipped lab models), and checks that:

* no cell ends in an error;
* 07's α and λ sliders are live widgets, not their text repr;
* dragging the α slider with the mouse, and pressing → on the focused λ slider, each move the
  ringed RD point, change the text panel and the decoded crop (read back from the kernel), and
  change the picture the browser shows;
* a student who types an answer into an exercise's check cell reads "right", or "not yet" and
  the hint for a wrong one.

Screenshots of the widget before and after each move, and of 00 and 02, go to
``reports/browser/``. Needs ``/usr/bin/chromium`` (Debian's ``chromium`` package) and
``pip install playwright``; skipped where either is missing. ``.ci/run`` installs both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
NOTEBOOKS = ("00_quickstart", "02_pretrained_proxy_failure", "07_alpha_lambda_explorer")
SHOTS = REPO / "reports" / "browser"
TOKEN = "proxiqa-lab-browser-test"
STATE_CELL = "import json; print(json.dumps(explorer.state()))"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="needs Debian's chromium (/usr/bin/chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install playwright)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on copies of the notebooks; yields its base URL and its folder."""
    root = tmp_path_factory.mktemp("lab")
    for name in NOTEBOOKS:
        shutil.copy(REPO / "notebooks" / f"{name}.ipynb", root)
    port = _free_port()
    cmd = [str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser", "--allow-root",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--IdentityProvider.token={TOKEN}",
           f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={root / 'workspaces'}",
           "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    env = {k: v for k, v in os.environ.items() if k != "PROXIQA_LAB_HEADLESS"}  # a live frontend
    log = open(root / "jupyter.log", "w")
    server = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"JupyterLab did not start: {(root / 'jupyter.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield base, root
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def _open(browser, lab, name: str):
    base = lab[0]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    # a workspace of its own, reset: only this notebook is open
    page.goto(f"{base}/lab/workspaces/{name}/tree/{name}.ipynb?reset&token={TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    _wait_idle(page, timeout=90)
    return page


def _wait_idle(page, timeout: float = 300, settle: int = 3) -> None:
    """Until the kernel has been idle, with no cell queued, for ``settle`` polls in a row (a kernel that is
    still starting reads idle for a moment before it initialises)."""
    deadline, calm = time.time() + timeout, 0
    while time.time() < deadline:
        status = page.locator(".jp-Notebook-ExecutionIndicator").first.get_attribute("data-status")
        prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        calm = calm + 1 if status == "idle" and not any("*" in p for p in prompts) else 0
        if calm >= settle:
            return
        time.sleep(1)
    raise AssertionError(f"the kernel did not become idle in {timeout} s")


def _run_all(page, timeout: float = 300) -> float:
    """Run > Run All Cells, then wait until every code cell shows an execution count and the kernel is idle."""
    start = clicked = time.time()
    _click_run_all(page)
    prompts: list[str] = []
    stalled, tries = 0, 1
    while time.time() - start < timeout:
        prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        status = page.locator(".jp-Notebook-ExecutionIndicator").first.get_attribute("data-status")
        # cells scrolled out of view are not rendered: their prompt reads ""
        ran = [bool(re.search(r"\[\d+\]", p)) for p in prompts if p.strip()]
        if ran and all(ran) and prompts[-1].strip() and status == "idle":
            return time.time() - start
        if not any(ran) and not any("*" in p for p in prompts) and time.time() - clicked > 20 and tries < 3:
            # nothing queued yet: a dialog or a busy page swallowed the click; dismiss and ask again
            page.keyboard.press("Escape")
            _click_run_all(page)
            clicked, tries = time.time(), tries + 1
        if _errors(page):
            break
        # idle with cells left unrun and none queued: Run All stopped at a failing cell
        stalled = stalled + 1 if status == "idle" and any(ran) and not any("*" in p for p in prompts) else 0
        if stalled >= 10:
            break
        time.sleep(1)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "failed_run_all.png"), full_page=True)
    raise AssertionError(f"not every cell ran (Run All asked {tries} times): prompts {prompts}, "
                         f"errors {_errors(page)}; screenshot {SHOTS / 'failed_run_all.png'}")


def _click_run_all(page) -> None:
    """Run > Run All Cells (the exact item: "Restart Kernel and Run All Cells…" would ask first)."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).first.click()


def _errors(page) -> list[str]:
    return page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]').all_inner_texts()


def _state(page) -> dict:
    """Run a new cell at the end that prints the explorer's state; return it."""
    page.locator(".jp-Cell").last.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")  # a new cell below, in command mode
    page.keyboard.press("Enter")
    page.keyboard.type(STATE_CELL)
    page.keyboard.press("Shift+Enter")
    _wait_idle(page, 60)
    cell = page.locator(".jp-CodeCell", has_text=STATE_CELL).last
    text = cell.locator(".jp-OutputArea-output").last.inner_text()
    return json.loads(text)


def test_explorer_sliders_move_the_point_text_and_image(lab, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = _open(browser, lab, "07_alpha_lambda_explorer")
    _run_all(page)
    assert _errors(page) == []
    assert "VBox(children=" not in page.locator(".jp-Notebook").inner_text()
    sliders = page.locator(".widget-slider")
    assert sliders.count() == 2  # α and λ, rendered as widgets
    widget = page.locator(".jupyter-widgets.widget-vbox").first
    image = widget.locator("img").first
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=str(SHOTS / "07_explorer_before.png"))
    before, shown = _state(page), image.screenshot()

    # α with the mouse: drag its handle to the left end of the track
    alpha = sliders.nth(0)
    alpha.scroll_into_view_if_needed()
    track = alpha.locator(".noUi-target").bounding_box()
    handle = alpha.locator(".noUi-handle").bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] + 1, handle["y"] + handle["height"] / 2, steps=10)
    page.mouse.up()
    time.sleep(2)
    widget.screenshot(path=str(SHOTS / "07_explorer_after_alpha_mouse.png"))
    after_alpha, shown_alpha = _state(page), image.screenshot()
    assert after_alpha["alpha"] != before["alpha"]
    assert after_alpha["point"] != before["point"] and after_alpha["text"] != before["text"]
    assert after_alpha["crop_sha256"] != before["crop_sha256"] or after_alpha["point"] != before["point"]
    assert shown_alpha != shown

    # λ with the keyboard: focus its handle and press the left arrow
    lmbda = sliders.nth(1)
    lmbda.scroll_into_view_if_needed()
    lmbda.locator(".noUi-handle").focus()
    page.keyboard.press("ArrowLeft")
    time.sleep(2)
    widget.screenshot(path=str(SHOTS / "07_explorer_after_lambda_keyboard.png"))
    after_lmbda, shown_lmbda = _state(page), image.screenshot()
    assert after_lmbda["lmbda"] < after_alpha["lmbda"] and after_lmbda["alpha"] == after_alpha["alpha"]
    assert after_lmbda["point"] != after_alpha["point"] and after_lmbda["text"] != after_alpha["text"]
    assert after_lmbda["crop_sha256"] != after_alpha["crop_sha256"]
    assert shown_lmbda != shown_alpha
    page.close()


@pytest.mark.parametrize("name", NOTEBOOKS[:2])
def test_notebook_runs_in_jupyterlab_without_errors(lab, browser, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = _open(browser, lab, name)
    _run_all(page)
    assert _errors(page) == []
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)
    # saved as a student would, then made clean as the README says (`make clean-notebooks`)
    page.keyboard.press("Control+s")
    time.sleep(2)
    page.close()
    saved = lab[1] / f"{name}.ipynb"
    from proxiqa_lab.notebooks.hygiene import check_notebook
    from proxiqa_lab.notebooks.hygiene import main as hygiene

    assert check_notebook(saved)  # it holds outputs now
    assert hygiene(["--fix", str(saved)]) == 0 and check_notebook(saved) == []


def test_a_student_answers_an_exercise_in_jupyterlab(lab, browser):
    """Type an answer into an exercise's check cell and run it: right reads right, a wrong one reads not yet."""
    from proxiqa_lab.exercises import exercise
    from proxiqa_lab.studies.results import load_results

    SHOTS.mkdir(parents=True, exist_ok=True)
    page = _open(browser, lab, "00_quickstart")
    _run_all(page)
    ex = exercise("00.3")
    right = ex.expected(load_results("course", ex.notebook))
    wrong = next(c for c in ex.choices if c != right)
    for answer, expect in ((wrong, "00.3: not yet. Hint:"), (right, "00.3: right")):
        cell = page.locator(".jp-CodeCell", has_text='exercises.check("00.3"').last
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+a")
        page.keyboard.type(f'exercises.check("00.3", "{answer}", profile=PROFILE)')
        page.keyboard.press("Shift+Enter")
        _wait_idle(page, 60)
        shown = cell.locator(".jp-OutputArea-output").last.inner_text()
        assert shown.startswith(expect), shown
        cell.screenshot(path=str(SHOTS / f"00_exercise_{'right' if answer == right else 'wrong'}.png"))
    assert _errors(page) == []
    page.close()
