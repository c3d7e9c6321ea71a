"""Batch parallelism across CPU cores, with NumPy only.

A mini-batch of N samples is split into one slice per core. Each slice runs
forward and backward through its own *replica* of the layers: a shallow copy
that shares the same ``params`` arrays but has its own caches and ``grads``.
The slice gradients are then averaged, weighted by slice size, which gives
exactly the gradient of the mean loss over the whole batch (up to the order of
floating-point additions).

Why this helps: NumPy releases the GIL inside its array loops and BLAS, so two
threads really run at once. Most of a small CNN's time goes to memory-bound
element-wise work (padding, im2col copies, ReLU, pooling) that BLAS threads
never touch; splitting the batch puts every core on all of it. While slices
run, BLAS is held to one thread per slice so the threads do not fight over
cores.

Holding BLAS to one thread needs ``threadpoolctl``. Without it, or on a
single core, everything runs in one thread as before.
"""
import os
from concurrent.futures import ThreadPoolExecutor

try:                                    # optional: only for pinning BLAS threads
    from threadpoolctl import ThreadpoolController
except ImportError:                     # pragma: no cover - exercised where absent
    ThreadpoolController = None

#: slices smaller than this are not worth a thread
MIN_SLICE = 32

_pool = None
_controller = None


def available_workers():
    """Cores this process may use (1 when BLAS threads cannot be pinned)."""
    if ThreadpoolController is None:
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:              # not on Linux
        return max(1, os.cpu_count() or 1)


def pool(workers):
    """A shared thread pool with at least ``workers - 1`` threads (the caller is the last)."""
    global _pool
    if _pool is None or _pool._max_workers < workers - 1:
        _pool = ThreadPoolExecutor(max_workers=max(1, workers - 1),
                                   thread_name_prefix="cnnlib")
    return _pool


def single_threaded_blas():
    """Context manager limiting BLAS to one thread per caller."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def slices(n, workers):
    """Split ``range(n)`` into ``workers`` nearly equal contiguous slices."""
    workers = max(1, min(workers, n // MIN_SLICE))
    edges = [n * k // workers for k in range(workers + 1)]
    return [slice(edges[k], edges[k + 1]) for k in range(workers)]


def run(tasks):
    """Run callables at once: all but the first in the pool, the first in this thread.

    Returns their results in order.
    """
    if len(tasks) == 1:
        return [tasks[0]()]
    with single_threaded_blas():
        futures = [pool(len(tasks)).submit(task) for task in tasks[1:]]
        first = tasks[0]()
        return [first] + [f.result() for f in futures]
