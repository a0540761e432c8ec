"""The explorer in a real browser: JupyterLab, headless Chromium through Playwright.

Starts JupyterLab on 127.0.0.1 with a token, opens the explorer notebook, runs all cells, drags
the rotation slider and checks that the predicted angle and the image after the ST both change.
The screenshots are saved to ``test-artifacts/``: the whole page (``explorer.png``) and the widget alone
(``explorer_widget.png``); with ``STNLIB_UPDATE_SCREENSHOT=1`` the widget's also becomes the README's
``figures/06_explorer_in_jupyterlab.png``, and the model shown is the study's own STN-C0 (seed 0 of the quick
profile, from ``make study``'s ``results/``) instead of a two-epoch smoke model.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import require
from stnlib import RunConfig
from stnlib.train import fit

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOT_DIGIT = 2  # test digit #2 of mnist5k, an upright 5
STUDY_C0 = ROOT / "results" / "runs" / "quick" / "mnist5k" / "STN-C0" / "seed0"  # make study's STN-C0
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require("Chromium")
    require("Playwright")
    work = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / "06_explorer.ipynb", work / "06_explorer.ipynb")
    if os.environ.get("STNLIB_UPDATE_SCREENSHOT") == "1":
        if not STUDY_C0.is_dir():
            pytest.fail(f"{STUDY_C0} is missing: run make study before updating the screenshot")
        shutil.copytree(STUDY_C0, work / "runs" / "quick" / "STN-C0" / "seed0")
    else:
        fit(RunConfig(dataset="mnist5k", model="CNN", localization="FCN", stn_placement=[0], rotate=True,
                      rotation_range=180, optimizer="adam", lr=0.003, epochs=2, seed=0, name=str(work / "runs" / "c0"),
                      device="cpu", eval_passes=1), progress=False, log=lambda _: None)
    port, token = free_port(), "stnlib-browser-test"
    env = dict(os.environ, STNLIB_RUNS=str(work / "runs"), JUPYTER_CONFIG_DIR=str(work / ".jupyter"))
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={work}", "--ServerApp.open_browser=False", "--allow-root",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "jupyter.log", "w"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("JupyterLab did not start: " + (work / "jupyter.log").read_text()[-2000:])
    yield f"{url}/lab/tree/06_explorer.ipynb?token={token}"
    server.terminate()
    server.wait(timeout=30)


def prediction_text(page) -> str:
    return page.locator(".stn-prediction").first.inner_text()


def explorer_image(page) -> str:
    return page.locator(".widget-image").first.get_attribute("src") or ""


def wait_until(condition, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_dragging_the_rotation_slider_updates_the_prediction_and_the_image(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        try:
            page.goto(lab, timeout=90_000)
            page.wait_for_selector(".jp-Notebook", timeout=90_000)
            select = page.locator(".jp-Dialog button.jp-mod-accept")
            try:  # "Select Kernel" on first open
                select.first.click(timeout=15_000)
            except Exception:
                pass
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator, .jp-Toolbar-kernelStatus", timeout=60_000)
            page.locator(".jp-Notebook").first.click()
            page.keyboard.press("Escape")
            page.click("text=Run", timeout=10_000)
            page.click("text=Run All Cells", timeout=10_000)
            page.wait_for_selector(".stn-prediction", timeout=180_000)
            wait_until(lambda: explorer_image(page).startswith("blob:") or len(explorer_image(page)) > 50, 60,
                       "the explorer's image")
            if os.environ.get("STNLIB_UPDATE_SCREENSHOT") == "1":  # the 5, whose ST undoes most of a turn by +33°
                digit = page.locator(".widget-inline-hbox input[type=number]").first
                digit.fill(str(SCREENSHOT_DIGIT))
                digit.press("Enter")
                wait_until(lambda: "class 5" in prediction_text(page), 60, "the screenshot's digit")
            before_text, before_image = prediction_text(page), explorer_image(page)
            assert "rotation +0°" in before_text

            handle = page.locator(".widget-slider .noUi-handle").first
            handle.scroll_into_view_if_needed()
            box = handle.bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] + 25, box["y"] + box["height"] / 2, steps=12)  # about +50°
            page.mouse.up()
            wait_until(lambda: prediction_text(page) != before_text, 60, "the predicted angle to change")
            wait_until(lambda: explorer_image(page) != before_image, 60, "the image after the ST to change")
            after_text = prediction_text(page)
            assert "rotation +0°" not in after_text and "ST undoes" in after_text
            wait_until(lambda: page.get_by_text("Python 3 (ipykernel) | Idle").count() > 0, 60, "an idle kernel")
            news = page.get_by_role("button", name="No", exact=True)
            if news.count():
                news.first.click()
            page.screenshot(path=str(ARTIFACTS / "explorer.png"), full_page=True)
            widget = page.locator(".jp-OutputArea-output .widget-vbox").first
            widget.screenshot(path=str(ARTIFACTS / "explorer_widget.png"))
            if os.environ.get("STNLIB_UPDATE_SCREENSHOT") == "1":
                shutil.copy(ARTIFACTS / "explorer_widget.png", ROOT / "figures" / "06_explorer_in_jupyterlab.png")
        finally:
            browser.close()
