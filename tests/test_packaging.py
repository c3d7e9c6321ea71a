"""The core stays NumPy-only: heavy packages are imported lazily, and batch
parallelism degrades to one thread without its optional helper."""
import subprocess
import sys

import numpy as np

from cnnlib import Sequential, layer, parallel


def test_importing_the_core_pulls_in_no_heavy_package():
    code = ("import sys, cnnlib, cnnlib.layers, cnnlib.model, cnnlib.training, cnnlib.data; "
            "from cnnlib import MnistTraining, layer, load_mnist; "
            "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib', 'ipywidgets', "
            "'mlxtend', 'sklearn', 'scipy', 'IPython') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, f"imported eagerly: {out.stdout} {out.stderr[-500:]}"


def test_without_threadpoolctl_everything_runs_in_one_thread(monkeypatch):
    monkeypatch.setattr(parallel, "ThreadpoolController", None)
    assert parallel.available_workers() == 1
    model = Sequential([layer("flatten", 16, (4, 4, 1)), layer("dense", 10, 16, "softmax")],
                       seed=0)
    assert model.workers == 1
    rng = np.random.default_rng(0)
    loss, probs = model.compute_gradients(rng.random((80, 4, 4, 1), dtype=np.float32),
                                          rng.integers(0, 10, 80))
    assert probs.shape == (80, 10) and np.isfinite(loss)


def test_slices_cover_the_batch_once():
    for n, workers in ((100, 2), (101, 3), (40, 2), (10, 4)):
        parts = parallel.slices(n, workers)
        covered = [i for part in parts for i in range(n)[part]]
        assert covered == list(range(n))
        assert all(part.stop - part.start >= min(n, parallel.MIN_SLICE) for part in parts)
