"""Time the whole notebook series as a learner runs it: full-size, in JupyterLab.

Starts JupyterLab on a copy of the repository (so no notebook on disk changes),
opens each numbered notebook in headless Chromium, runs Run All Cells and
waits for every cell to finish. `CI` is removed from the server's environment,
so the notebooks train on full MNIST. Reuses the browser test's helpers.

    CNNLIB_MNIST=/path/mnist.npz python benchmarks/series_in_jupyterlab.py
"""
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _browser_helpers():
    spec = importlib.util.spec_from_file_location("browser", REPO / "tests" / "test_browser.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class FullSizePopen(subprocess.Popen):
        def __init__(self, *args, env=None, **kwargs):
            env = dict(os.environ if env is None else env)
            env.pop("CI", None)                       # readers get the full-size run
            super().__init__(*args, env=env, **kwargs)

    module.subprocess = type("patched", (), {"Popen": FullSizePopen, **{
        name: getattr(subprocess, name)
        for name in ("STDOUT", "DEVNULL", "PIPE", "TimeoutExpired")}})
    return module


def main():
    browser = _browser_helpers()
    work = Path(tempfile.mkdtemp(prefix="cnnlib-series-"))
    copy = work / "repo"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".git", ".venv*"))
    total = 0.0
    try:
        with browser.jupyter_lab(copy, work) as server, browser.chromium_page() as page:
            for notebook in sorted((copy / "notebooks").glob("[0-9][0-9]_*.ipynb")):
                # ?reset starts from an empty workspace: one notebook tab at a time
                page.goto(f"{server.base_url}/lab/tree/notebooks/{notebook.name}"
                          f"?reset&token={server.token}")
                page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for(
                    timeout=60_000)
                start = time.monotonic()
                browser.run_all_cells(page, notebook, timeout=900)
                seconds = time.monotonic() - start
                total += seconds
                print(f"{notebook.name}: Run All finished in {seconds:.1f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"whole series in JupyterLab: {total:.1f} s ({total / 60:.1f} min)")


if __name__ == "__main__":
    main()
