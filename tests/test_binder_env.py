"""The Binder environment, rebuilt from scratch: does every notebook run in it?

What repo2docker does with ``binder/`` is replayed in a fresh virtual environment:

1. ``pip install -r binder/requirements.txt`` (repo2docker installs it before it
   copies the repository, so the file must not name local paths);
2. ``binder/postBuild`` from the repository root (it installs cnnlib itself);
3. every notebook under ``notebooks/`` executed with nbval (``--nbval-lax``),
   inside that environment, with ``CI=true`` so the notebooks train small.

It takes several minutes (the download and install of tensorflow-cpu is most of
it; pip's cache is used, so later runs are faster), so it only runs when
``CNNLIB_BINDER_TEST=1``::

    CNNLIB_BINDER_TEST=1 python -m pytest -m binder tests/test_binder_env.py -s

The virtual environment is deleted afterwards unless ``CNNLIB_BINDER_KEEP_VENV=1``.
"""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.binder
slow = pytest.mark.skipif(os.environ.get("CNNLIB_BINDER_TEST") != "1",
                          reason="slow (fresh venv + tensorflow-cpu): set CNNLIB_BINDER_TEST=1")

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist.npz"

INSTALL_TIMEOUT = 40 * 60      # seconds; a cold pip cache downloads ~1 GB of wheels
NOTEBOOKS_TIMEOUT = 30 * 60
# cnnlib must come from this repository (postBuild's editable install).
IMPORT_CHECK = """
import pathlib, cnnlib, ipywidgets, matplotlib, mlxtend, nbval, numpy
where = pathlib.Path(cnnlib.__file__).resolve()
assert where.is_relative_to({repo!r}), where
print("cnnlib from", where, "numpy", numpy.__version__)
"""


def _run(step, command, log_dir, timings, timeout, report, **kwargs):
    """Run one step, log its output to a file, record its time, fail with the tail."""
    log_path = Path(log_dir) / f"{step.replace(' ', '_')}.log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        try:
            result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, timeout=timeout, **kwargs)
            code = result.returncode
        except subprocess.TimeoutExpired:
            code = f"timeout after {timeout} s"
    timings[step] = time.monotonic() - started
    report(f"[binder] {step}: {timings[step]:.1f} s (exit {code})")
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-80:])
        pytest.fail(f"{step} failed (exit {code}): {' '.join(map(str, command))}\n"
                    f"--- last lines of {log_path} ---\n{tail}", pytrace=False)
    return log_path


def test_binder_files_follow_repo2docker_rules():
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    requirements = (BINDER / "requirements.txt").read_text().splitlines()
    pins = [line.split("#")[0].strip() for line in requirements]
    pins = [line for line in pins if line]
    unpinned = [line for line in pins if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", line)]
    assert not unpinned, f"binder/requirements.txt: pin every package with ==, got {unpinned}"
    names = {re.split(r"[=\[]", line)[0].lower() for line in pins}
    assert "tensorflow-cpu" in names and "tensorflow" not in names
    post_build = BINDER / "postBuild"
    assert os.access(post_build, os.X_OK), "binder/postBuild must be executable"
    assert post_build.read_text().startswith("#!/bin/bash")


@slow
def test_notebooks_run_in_a_fresh_binder_environment(tmp_path_factory, capsys):
    def report(line):              # straight to the terminal: timings show without -s
        with capsys.disabled():
            print(line, flush=True)

    version = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    if f"{sys.version_info.major}.{sys.version_info.minor}" != version:
        pytest.skip(f"binder/runtime.txt asks for Python {version}, "
                    f"this is {sys.version_info.major}.{sys.version_info.minor}")
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks under notebooks/ to run"

    work = tmp_path_factory.mktemp("binder")
    venv, logs = work / "venv", work / "logs"
    logs.mkdir()
    python = venv / "bin" / "python"
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_NO_CACHE_DIR")}
    env.update({"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}",
                "CI": "true", "PYTHONNOUSERSITE": "1"})
    if SHARED_MNIST.is_file():
        env["CNNLIB_MNIST"] = str(SHARED_MNIST)
    timings = {}
    started = time.monotonic()

    def step(name, command, timeout=300, **kwargs):
        return _run(name, [str(part) for part in command], logs, timings, timeout, report,
                    env=env, cwd=REPO, **kwargs)

    try:
        step("create venv", [sys.executable, "-m", "venv", venv])
        # pip's cache stays on (no --no-cache-dir): a second run reuses the wheels.
        step("pip install requirements",
             [python, "-m", "pip", "install", "-r", BINDER / "requirements.txt"],
             timeout=INSTALL_TIMEOUT)
        # repo2docker runs postBuild from the repository root with the environment's
        # python first on PATH; so does this.
        step("postBuild", [BINDER / "postBuild"], timeout=600)
        step("pip check", [python, "-m", "pip", "check"])
        step("import check", [python, "-c", IMPORT_CHECK.format(repo=str(REPO))])
        extensions = step("labextension list", [python, "-m", "jupyter", "labextension", "list"])
        assert "@jupyter-widgets/jupyterlab-manager" in extensions.read_text(), (
            "the ipywidgets JupyterLab extension is missing from the Binder environment")
        # --nbval-current-env: the kernel runs on this venv's python, whatever
        # "python3" kernelspec the machine has elsewhere.
        step("nbval notebooks", [python, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
                                 "-p", "no:cacheprovider", "-q", "notebooks/"],
             timeout=NOTEBOOKS_TIMEOUT)
    finally:
        report("[binder] timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
                + f"; total {time.monotonic() - started:.0f} s")
        if os.environ.get("CNNLIB_BINDER_KEEP_VENV") == "1":
            report(f"[binder] venv kept at {venv}, logs at {logs}")
        else:
            shutil.rmtree(venv, ignore_errors=True)
