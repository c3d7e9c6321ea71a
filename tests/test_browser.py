"""End-to-end test of the training panel in a real JupyterLab, driven by Playwright.

It starts JupyterLab on a free loopback port, opens
``notebooks/06_training_mnist.ipynb`` in Debian's Chromium (``/usr/bin/chromium``;
Playwright's own browser download is not used), runs all cells, then uses the
``cnnlib.widgets.TrainingPanel`` the way a learner would: change the learning
rate, click Train, watch the loss plot update and the status reach "done".
Screenshots go to ``docs/widgets_panel.png`` and ``docs/live_loss_plot.png``.

The notebook is never saved: autosave is switched off in a private settings
directory, and the test checks that the file on disk is unchanged.

Run it with ``pytest -m browser tests/test_browser.py`` (about 1-2 minutes).
"""
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/06_training_mnist.ipynb"
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist.npz"
DOCS = REPO / "docs"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]

SERVER_START_TIMEOUT = 90      # seconds until /api/status answers
RUN_ALL_TIMEOUT = 210          # seconds for "Run All Cells" to finish
TRAIN_TIMEOUT = 150            # seconds for one click on Train to reach "done"

# Plugins that would reach out to the internet or pop up toasts over the notebook.
DISABLED_PLUGINS = ["@jupyterlab/apputils-extension:announcements"]
# User settings for the test server only (a private directory; nothing global).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification":
        {"fetchNews": "false", "checkForUpdates": False},
    # Never write the notebook back to the repository.
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    # Keep every cell in the DOM so that cells can be found by index.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}

STDERR_OUTPUT = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'


# --------------------------------------------------------------------------- server

def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_tail(path, n_lines=60):
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(no server log: {exc})"
    return "\n".join(lines[-n_lines:])


def _proc_stat(pid):
    """(parent pid, start time) of a process from /proc, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()   # the name, in parentheses, may hold spaces
    return int(fields[1]), fields[19]


def _descendants(pid):
    """(pid, start time) of every process below ``pid`` (Linux /proc)."""
    children = {}
    for entry in Path("/proc").iterdir():
        stat = _proc_stat(entry.name) if entry.name.isdigit() else None
        if stat is not None:
            children.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def _api(base, token, path, method="GET", timeout=5):
    request = urllib.request.Request(f"{base}{path}", method=method,
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body else None


class LabServer:
    def __init__(self, base_url, token, log_path, process):
        self.base_url, self.token, self.log_path, self.process = (
            base_url, token, log_path, process)

    def url(self, path):
        return f"{self.base_url}{path}?token={self.token}"

    def log_tail(self, n_lines=60):
        return _log_tail(self.log_path, n_lines)


def _write_lab_config(home):
    """Private config and settings dirs so the user's own setup plays no part."""
    config_dir = home / "config"
    (config_dir / "labconfig").mkdir(parents=True)
    (config_dir / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {name: True for name in DISABLED_PLUGINS}}))
    settings_dir = home / "lab-settings"
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return config_dir, settings_dir


@contextlib.contextmanager
def jupyter_lab(root_dir, work_dir):
    """Run JupyterLab on 127.0.0.1 for the duration of the block; always stop it."""
    work_dir = Path(work_dir)
    config_dir, settings_dir = _write_lab_config(work_dir)
    port, token = _free_port(), secrets.token_hex(24)
    env = dict(os.environ)
    env.update({
        "CI": "true",                              # the notebooks train small under CI
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTERLAB_SETTINGS_DIR": str(settings_dir),
        "JUPYTERLAB_WORKSPACES_DIR": str(work_dir / "lab-workspaces"),
        "JUPYTER_RUNTIME_DIR": str(work_dir / "runtime"),
        "PYTHONUNBUFFERED": "1",
    })
    if SHARED_MNIST.is_file():
        env["CNNLIB_MNIST"] = str(SHARED_MNIST)
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.allow_root=True",              # CI runs as root
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log_path = work_dir / "jupyterlab.log"
    base_url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=root_dir, env=env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    server = LabServer(base_url, token, log_path, process)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {process.returncode} "
                                   f"before answering.\n--- server log ---\n{server.log_tail()}")
            try:
                _api(base_url, token, "/api/status", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer /api/status within "
                                   f"{SERVER_START_TIMEOUT} s.\n--- server log ---\n"
                                   f"{server.log_tail()}")
            time.sleep(0.3)
        yield server
    finally:
        _stop_server(server)


def _stop_server(server):
    process = server.process
    if process.poll() is None:
        # Shut the kernels down politely first; they run in sessions of their own.
        with contextlib.suppress(Exception):
            for kernel in _api(server.base_url, server.token, "/api/kernels"):
                _api(server.base_url, server.token, f"/api/kernels/{kernel['id']}",
                     method="DELETE", timeout=10)
    leftovers = _descendants(process.pid) if process.poll() is None else []
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    for pid, start_time in leftovers:           # a kernel that outlived its server
        stat = _proc_stat(pid)
        if stat is not None and stat[1] == start_time:     # the same process, not a reuse
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------- browser

def require_browser():
    """Fail (not skip) with a clear message when the browser or Playwright is missing."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's Chromium "
                    f"(apt-get install -y chromium) to run the browser tests", pytrace=False)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"Playwright for Python is missing ({exc}): pip install playwright "
                    f"(its own browser download is not needed)", pytrace=False)


@contextlib.contextmanager
def chromium_page(viewport=(1400, 1000)):
    require_browser()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": viewport[0],
                                                    "height": viewport[1]})
            page = context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def _poll(description, check, timeout, interval=0.25, page=None):
    """Call ``check()`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {description}")
        if page is not None:
            page.wait_for_timeout(interval * 1000)
        else:
            time.sleep(interval)


def _kernel_status(page):
    """Kernel state from the status bar ("Python 3 (ipykernel) | Idle"), lower case.

    "no kernel" until a kernel is attached. (The toolbar's execution indicator
    reads "idle" even before the kernel connects, so it is not used.)
    """
    return page.evaluate("""() => {
        for (const item of document.querySelectorAll('.jp-StatusBar-Item')) {
            const match = /^(.+?) \\| ([A-Za-z ]+)$/.exec(item.innerText.trim());
            if (match) return match[1] === 'No Kernel' ? 'no kernel' : match[2].toLowerCase();
        }
        return null;
    }""")


def _menu(page, menu, item):
    """Click ``item`` in the main menu ``menu`` (e.g. Run -> Run All Cells)."""
    page.locator(".lm-MenuBar-itemLabel").filter(
        has_text=re.compile(f"^{re.escape(menu)}$")).first.click()
    page.locator(".lm-Menu-content .lm-Menu-itemLabel").filter(
        has_text=re.compile(f"^{re.escape(item)}$")).first.click()


# One round trip: prompts of all code cells, tracebacks outside allowed cells.
_NOTEBOOK_STATE_JS = """(allowed) => {
    const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
    const tracebacks = [];
    cells.forEach((cell, index) => {
        if (allowed.includes(index)) return;
        cell.querySelectorAll('%s').forEach(out => {
            const text = out.innerText;
            if (text.includes('Traceback')) tracebacks.push(`cell ${index}: ` + text.slice(-1500));
        });
    });
    const prompts = [...document.querySelectorAll(
        '.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')].map(p => p.innerText.trim());
    return {cells: cells.length, prompts, tracebacks};
}""" % STDERR_OUTPUT.replace("'", "\\'")

_EXECUTED = re.compile(r"^\[\d+\]:$")
_NOT_RUN = re.compile(r"^\[ ?\]:$|^$")


def _notebook_state(page, allowed=()):
    return page.evaluate(_NOTEBOOK_STATE_JS, sorted(allowed))


def run_all_cells(page, notebook_file, timeout=RUN_ALL_TIMEOUT):
    """Clear outputs, run every cell, wait until each code cell shows ``[n]:``.

    Returns the notebook's cells as read from disk (for finding cells by index).
    """
    cells = json.loads(Path(notebook_file).read_text())["cells"]
    # Cells that raise on purpose (a lesson on error messages) keep their traceback.
    allowed = {i for i, cell in enumerate(cells)
               if "raises-exception" in cell.get("metadata", {}).get("tags", [])}
    # JupyterLab does not execute an empty code cell: its prompt stays "[ ]:".
    blank = [not "".join(cell.get("source", "")).strip()
             for cell in cells if cell.get("cell_type") == "code"]
    _poll(f"all {len(cells)} cells to render and the kernel to be idle",
          lambda: (_notebook_state(page)["cells"] == len(cells)
                   and _kernel_status(page) == "idle"), 90, page=page)
    # Saved outputs carry execution counts too: clear them so "[n]:" means "ran now".
    _menu(page, "Edit", "Clear Outputs of All Cells")
    _poll("the outputs to be cleared",
          lambda: all(_NOT_RUN.match(p) for p in _notebook_state(page)["prompts"]),
          20, page=page)
    _menu(page, "Run", "Run All Cells")

    def check():
        state = _notebook_state(page, allowed)
        if state["tracebacks"]:
            raise AssertionError("a cell raised during Run All:\n"
                                 + "\n".join(state["tracebacks"]))
        status = _kernel_status(page)
        if status == "dead":
            raise AssertionError("the kernel died during Run All")
        prompts = state["prompts"]
        return (status == "idle" and len(prompts) == len(blank) and all(
            _EXECUTED.match(prompt) or (empty and _NOT_RUN.match(prompt))
            for prompt, empty in zip(prompts, blank)))

    _poll("Run All Cells to finish", check, timeout, interval=1.0, page=page)
    return cells


_PANEL_RECORDER_JS = """([status, img]) => {
    img = img.tagName === 'IMG' ? img : img.querySelector('img');
    const log = window.__cnnlibPanelLog = {status: [status.innerText.trim()], src: [img.src]};
    new MutationObserver(() => {
        const text = status.innerText.trim();
        if (text !== log.status[log.status.length - 1]) log.status.push(text);
    }).observe(status, {subtree: true, childList: true, characterData: true});
    new MutationObserver(() => {
        if (img.src !== log.src[log.src.length - 1]) log.src.push(img.src);
    }).observe(img, {attributes: true, attributeFilter: ['src']});
}"""


def _cell_texts(cell):
    """Every text output of a cell (streams, errors, and the panel's Output widget)."""
    return cell.locator(".jp-RenderedText").all_inner_texts()


def _set_slider_readout(page, slider, value_text):
    readout = slider.locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value_text)
    page.keyboard.press("Enter")
    return readout


# The panel's outermost widget, and the extent of what it draws (boxes stretch to
# the full output width, so only leaf elements count).
_PANEL_EXTENT_JS = """(control) => {
    let root = control;
    for (let el = control.parentElement; el && !el.classList.contains('jp-OutputArea-output');
         el = el.parentElement) {
        if (el.classList.contains('jupyter-widgets')) root = el;
    }
    root.scrollIntoView({block: 'center'});
    const box = {left: Infinity, top: Infinity, right: -Infinity, bottom: -Infinity};
    for (const el of [root, ...root.querySelectorAll('*')]) {
        if (el !== root && el.children.length && el.tagName !== 'SELECT') continue;
        const r = el.getBoundingClientRect();
        if (r.width < 1 || r.height < 1) continue;
        box.left = Math.min(box.left, r.left); box.top = Math.min(box.top, r.top);
        box.bottom = Math.max(box.bottom, r.bottom);
        if (el !== root) box.right = Math.max(box.right, r.right);
    }
    const outer = root.getBoundingClientRect();
    box.rootTop = outer.top; box.rootBottom = outer.bottom;
    return box;
}"""


def _panel_screenshot(page, control, path, margin=8):
    """Screenshot of the widget panel that holds ``control``, cropped to its content."""
    box = control.evaluate(_PANEL_EXTENT_JS)
    page.wait_for_timeout(300)                     # let the scroll settle
    box = control.evaluate(_PANEL_EXTENT_JS)
    viewport = page.viewport_size
    # Vertically never beyond the panel: other outputs of the cell sit right above it.
    left, top = max(box["left"] - margin, 0), max(box["top"] - margin, box["rootTop"], 0)
    right = min(box["right"] + margin, viewport["width"])
    bottom = min(box["bottom"] + margin, box["rootBottom"], viewport["height"])
    page.screenshot(path=str(path), clip={"x": left, "y": top, "width": right - left,
                                          "height": bottom - top})


def exercise_panel(page, screenshot_dir, timeout=TRAIN_TIMEOUT):
    """Check the TrainingPanel: controls, learning rate edit, Train, live plot, status."""
    train = page.locator(".cnnlib-train")
    _poll("the training panel (.cnnlib-train) to render",
          lambda: train.count() > 0, 60, page=page)
    # The first cell whose output holds the panel; everything below is scoped to it.
    cell = page.locator(".jp-Notebook .jp-Cell", has=train).first
    for css in ("cnnlib-lr", "cnnlib-batch", "cnnlib-epochs", "cnnlib-optimizer",
                "cnnlib-train", "cnnlib-status", "cnnlib-plot"):
        control = cell.locator(f".{css}").first
        assert control.count() == 1, f"the panel has no .{css} control"
        control.wait_for(state="visible", timeout=10_000)
    plot = cell.locator("img.cnnlib-plot, .cnnlib-plot img").first
    status = cell.locator(".cnnlib-status").first
    train_button = cell.locator(".cnnlib-train").first
    assert "train" in train_button.inner_text().lower()
    assert cell.locator(".cnnlib-batch select").count() == 1, "batch size is not a dropdown"

    # Learning rate: type a new value into the slider's readout, as a learner would.
    lr = cell.locator(".cnnlib-lr").first
    old_text = lr.locator(".widget-readout").inner_text().strip()
    old_value = float(old_text)
    # Half the rate (slower, never diverges), or double it at the slider's minimum.
    new_value = float(f"{old_value / 2 if old_value / 2 >= 1e-4 else old_value * 2:.3g}")
    readout = _set_slider_readout(page, lr, f"{new_value:g}")
    _poll(f"the learning-rate readout to change from {old_text}",
          lambda: readout.inner_text().strip() != old_text, 10, page=page)
    shown = float(readout.inner_text().strip())
    assert abs(shown - new_value) <= 0.02 * new_value, (
        f"learning rate readout shows {shown}, expected {new_value}")

    # Record every status text and every new plot picture from now on, in the page:
    # a short run can pass through its states faster than Python could poll them.
    page.evaluate(_PANEL_RECORDER_JS, [status.element_handle(), plot.element_handle()])
    texts_before = set(_cell_texts(cell))
    train_button.click()

    def watch():
        log = page.evaluate("() => window.__cnnlibPanelLog")
        if _kernel_status(page) == "dead":
            raise AssertionError(f"the kernel died while training; status: {log['status']}")
        new_errors = [t for t in set(_cell_texts(cell)) - texts_before
                      if "Traceback" in t or "Error" in t]
        failed = [t for t in log["status"][1:] if t.lower().startswith("error")]
        if new_errors or failed:
            raise AssertionError(f"the Train click failed; status: {log['status']}\n"
                                 + "\n".join(new_errors)[-3000:])
        after_click = log["status"][1:]
        running = any(not t.lower().startswith("done") for t in after_click)
        finished = bool(after_click) and after_click[-1].lower().startswith("done")
        return log if running and finished and len(log["src"]) > 1 else None

    _poll("training to finish (a progress status, then 'done...', and a new plot)",
          watch, timeout, interval=0.5, page=page)
    _poll("the kernel to be idle and Train enabled again",
          lambda: _kernel_status(page) == "idle" and train_button.is_enabled(), 30, page=page)
    log = watch()
    assert log is not None, "the panel changed again after training finished"

    screenshot_dir = Path(screenshot_dir)
    screenshot_dir.mkdir(parents=True, exist_ok=True)
    _panel_screenshot(page, train_button, screenshot_dir / "widgets_panel.png")
    return {"status": log["status"], "plot_updates": len(log["src"]) - 1,
            "learning_rate": (old_text, readout.inner_text().strip()), "plot": plot}


def screenshot_live_loss_plot(page, cells, screenshot_dir, fallback):
    """Screenshot the LiveLossPlot figure (the last image of the cell that makes one)."""
    path = Path(screenshot_dir) / "live_loss_plot.png"
    for index, cell in enumerate(cells):
        source = "".join(cell.get("source", ""))
        if cell.get("cell_type") == "code" and "LiveLossPlot(" in source:
            images = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(
                ".jp-OutputArea-output img")
            if images.count():
                images.last.screenshot(path=str(path))
                return index
    fallback.screenshot(path=str(path))
    return None


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------- the test

@pytest.fixture
def lab_server():
    require_browser()                  # before spending seconds on starting JupyterLab
    work_dir = Path(tempfile.mkdtemp(prefix="cnnlib-lab-"))
    try:
        with jupyter_lab(REPO, work_dir) as server:
            yield server
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def test_training_panel_in_jupyterlab(lab_server, capsys):
    notebook_file = REPO / NOTEBOOK
    assert notebook_file.is_file(), f"{NOTEBOOK} is missing"
    before = _sha256(notebook_file)
    started = time.monotonic()
    timings = {}
    with chromium_page() as page:
        try:
            page.goto(lab_server.url(f"/lab/tree/{NOTEBOOK}"))
            page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for(
                timeout=60_000)
            timings["open"] = time.monotonic() - started
            cells = run_all_cells(page, notebook_file)
            timings["run all"] = time.monotonic() - started - timings["open"]
            result = exercise_panel(page, DOCS)
            timings["train"] = time.monotonic() - started - sum(timings.values())
            screenshot_live_loss_plot(page, cells, DOCS, fallback=result["plot"])
        except BaseException:
            failure_png = Path(tempfile.gettempdir()) / "cnnlib-browser-failure.png"
            with contextlib.suppress(Exception):
                page.screenshot(path=str(failure_png), full_page=True)
            print(f"page screenshot: {failure_png}")
            print(f"--- JupyterLab log (tail) ---\n{lab_server.log_tail()}")
            raise
    with capsys.disabled():                      # to the terminal, even without -s
        print("\n[browser] timings (s): "
              + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
              + f"; learning rate {result['learning_rate'][0]} -> "
                f"{result['learning_rate'][1]}; plot updates {result['plot_updates']}; "
                f"final status {result['status'][-1]!r}")
    assert _sha256(notebook_file) == before, f"{NOTEBOOK} was modified on disk by the test"
