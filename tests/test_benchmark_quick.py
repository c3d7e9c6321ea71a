"""The benchmark's --quick mode runs end to end (a smoke test: no timing claims)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_benchmark_runs(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "benchmark.py"),
                          "--quick", "--output", str(tmp_path / "quick")],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    table = (tmp_path / "quick.md").read_text()
    for needle in ("| original | cnnlib |", "| original | keras |", "| lenet | cnnlib |",
                   "| lenet | keras |", "cnnlib / Keras", "Machine:"):
        assert needle in table, needle
