"""The analyst dashboard as a person uses it: the running ``dashboard`` service, opened in
headless Chromium (Debian's ``chromium`` package, driven by Playwright; never a downloaded
browser).

The waits read the state Streamlit's own frontend publishes in the DOM (its ``data-testid``
and ``data-test-*`` attributes, as found in the installed ``streamlit/static`` bundle), so a
test polls for a state instead of sleeping.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

from encore import supervisor
from encore.settings import Settings, settings_env

REPO = Path(__file__).resolve().parents[2]
ENCORE = Path(sys.executable).with_name("encore")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    # the machine's network is closed: Chromium's own background connections only fail
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 800}
SERVICE = "dashboard"

# Streamlit's frontend (1.67): the app root carries the script's run state and the
# connection's; exceptions and st.error render these elements, and an unknown url path a
# "Page not found" dialog (the dashboard opens no dialog of its own).
APP = '[data-testid="stApp"]'
IDLE = f'{APP}[data-test-script-state="notRunning"][data-test-connection-state="CONNECTED"]'
RUNNING = '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stSkeleton"]'
ERRORS = (
    '[data-testid="stException"], [data-testid="stAlertContentError"], [data-testid="stDialog"]'
)
CHART = '[data-testid="stVegaLiteChart"]'
METRIC = '[data-testid="stMetric"]'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def dashboard(settings: Settings, port: int) -> Iterator[str]:
    """The dashboard on ``settings`` (its lake, Redis, MLflow) at ``port`` for the block, as
    the platform runs it: ``encore up dashboard``, then ``encore down dashboard``. Yields its
    address; afterwards no process of it is left (asserted)."""
    env = {**os.environ, **settings_env(settings), "ENCORE_DASHBOARD__PORT": str(port)}
    address = f"http://127.0.0.1:{port}"

    def encore(command: str) -> None:
        done = subprocess.run(
            [str(ENCORE), command, SERVICE], env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, f"encore {command} {SERVICE}:\n{done.stderr[-4000:]}"

    group = None
    try:
        encore("up")
        group = supervisor.recorded_group(settings.home, SERVICE)
        assert group is not None, "encore up dashboard recorded no process"
        wait_healthy(address)
        yield address
    finally:
        encore("down")  # also after a failed start: nothing of it may outlive the test
    assert not supervisor.group_alive(group), f"dashboard processes left in group {group}"
    assert supervisor.running_pid(settings.home, SERVICE) is None


def wait_healthy(address: str, timeout_s: float = 60) -> None:
    """Until Streamlit's server answers its health endpoint."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{address}/_stcore/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{address}/_stcore/health never answered"
        time.sleep(0.2)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """One headless Chromium for the block."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(page: Page, url: str, timeout_s: float = 60) -> None:
    """Go to ``url`` and wait until the script has run and the page settled."""
    page.goto(url)
    wait_idle(page, timeout_s)


def wait_idle(page: Page, timeout_s: float = 60) -> None:
    """Until the app is connected, its script not running and nothing shows as loading."""
    page.wait_for_selector(IDLE, timeout=timeout_s * 1000)
    page.wait_for_function(
        f"() => document.querySelectorAll({RUNNING!r}).length === 0",
        timeout=timeout_s * 1000,
    )


# A chart drew its data: an SVG chart holds marks of data (Vega's class role-mark; axes and
# legends have their own roles), a canvas one holds coloured pixels (axes and labels are grey).
_CHART_DRAWN = """
chart => {
  const svg = chart.querySelector('svg.marks');
  if (svg) return svg.querySelectorAll('g.role-mark > *').length > 0;
  const canvas = chart.querySelector('canvas');
  if (!canvas || canvas.width === 0 || canvas.height === 0) return false;
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 0; i < pixels.length; i += 4) {
    const [r, g, b, a] = [pixels[i], pixels[i + 1], pixels[i + 2], pixels[i + 3]];
    if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 60) return true;
  }
  return false;
}
"""


def wait_for_charts(page: Page, timeout_s: float = 30) -> int:
    """Until every chart on the page has drawn its data; returns how many there are."""
    page.wait_for_function(
        f"""() => {{
          const charts = [...document.querySelectorAll({CHART!r})];
          return charts.length > 0 && charts.every({_CHART_DRAWN});
        }}""",
        timeout=timeout_s * 1000,
    )
    return page.locator(CHART).count()


def errors_shown(page: Page) -> list[str]:
    """The text of every exception and error alert on the page."""
    return page.locator(ERRORS).all_inner_texts()


def title(page: Page) -> str:
    return page.locator("h1").first.inner_text().strip()


def metrics(page: Page) -> dict[str, str]:
    """Each ``st.metric`` on the page: label -> displayed value."""
    shown = {}
    for metric in page.locator(METRIC).all():
        label = metric.get_by_test_id("stMetricLabel").inner_text().strip()
        shown[label] = metric.get_by_test_id("stMetricValue").inner_text().strip()
    return shown


def number(text: str) -> float:
    """The number a metric shows: ``1,234``, ``56.7 h``, ``12%``."""
    found = re.search(r"-?[\d,]*\.?\d+", text)
    assert found, f"no number in {text!r}"
    return float(found.group().replace(",", ""))


def choose(page: Page, label: str, option: str) -> None:
    """Pick ``option`` in the select or multiselect box labelled ``label``, as a person does:
    click the box, type, click the option, close the list."""
    box = page.locator('[data-testid="stSelectbox"], [data-testid="stMultiSelect"]').filter(
        has=page.get_by_test_id("stWidgetLabel").get_by_text(label, exact=True)
    )
    box.click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")


def artifacts_dir() -> Path:
    """Where the screenshots go: ``$ENCORE_TEST_ARTIFACTS/screenshots``, by default the
    checkout's ``.encore/test-artifacts/screenshots`` (git-ignored)."""
    root = os.environ.get("ENCORE_TEST_ARTIFACTS") or REPO / ".encore" / "test-artifacts"
    path = Path(root) / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def small_png(png: bytes, colours: int = 128) -> bytes:
    """The screenshot with a palette of ``colours``: a page of flat colours stays readable
    at a fraction of the size (the README's copies)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    image.quantize(colours, method=Image.Quantize.MEDIANCUT).save(out, "PNG", optimize=True)
    return out.getvalue()


def chart_count(page: Page) -> int:
    return page.locator(CHART).count()


def wait_for_text(page: Page, text: str, timeout_s: float = 30) -> None:
    """Until ``text`` shows on the page, in its text or in a table's cells (a data frame
    draws on a canvas; its cells are in the canvas's accessible table)."""
    page.wait_for_function(
        """text => document.body.innerText.includes(text) ||
             [...document.querySelectorAll('td[role=gridcell]')].some(
               cell => cell.textContent.includes(text))""",
        arg=text,
        timeout=timeout_s * 1000,
    )


def rows_after(page: Page, heading: str, timeout_s: float = 30) -> list[dict[str, str]]:
    """The rows (column name -> cell text) of the first table (``st.dataframe``) after the
    heading that reads ``heading`` (or starts with it and a space). A data frame draws only
    the columns in view: a column scrolled out of a narrow table is not there."""
    found = page.wait_for_function(
        """heading => {
          const title = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].find(h => {
            const text = h.innerText.trim();
            return text === heading || text.startsWith(heading + ' ');
          });
          if (!title) return null;
          const table = [...document.querySelectorAll('[data-testid="stDataFrame"]')].find(
            frame => title.compareDocumentPosition(frame) & Node.DOCUMENT_POSITION_FOLLOWING);
          if (!table) return null;
          const names = [...table.querySelectorAll('thead th')].map(th => th.textContent.trim());
          const rows = [...table.querySelectorAll('tbody tr')].map(row => Object.fromEntries(
            [...row.querySelectorAll('td')].map((cell, i) => [names[i], cell.textContent.trim()])));
          return rows.length > 0 ? rows : null;
        }""",
        arg=heading,
        timeout=timeout_s * 1000,
    )
    return found.json_value()


def save_screenshot(page: Page, name: str, readme: Path | None = None) -> Path:
    """The whole page as ``<artifacts>/<name>.png``; with ``readme`` (a folder) also a small
    copy there. Streamlit scrolls inside its main block, not the document: the viewport is
    stretched to the content's height for the shot, then put back."""
    main = page.locator('[data-testid="stMain"]')
    height = main.evaluate("main => main.scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], height)})
    try:
        wait_idle(page)
        png = page.screenshot(full_page=True, animations="disabled")
    finally:
        page.set_viewport_size(VIEWPORT)
    path = artifacts_dir() / f"{name}.png"
    path.write_bytes(png)
    if readme is not None:
        readme.mkdir(parents=True, exist_ok=True)
        (readme / f"{name}.png").write_bytes(small_png(png))
    return path
