"""Side-by-side training benchmark: cnnlib (pure NumPy) against Keras (TensorFlow CPU).

Both frameworks train the same architecture on the same data with the same
batch size, optimiser and number of epochs. Runs alternate (cnnlib, Keras,
cnnlib, Keras, ...) inside one invocation, each in a fresh subprocess, so
that both see the same machine state and each peak memory is its own.

    python benchmarks/benchmark.py                 # full run: 60k train, 10k test
    python benchmarks/benchmark.py --quick         # CI smoke test, small data, no timing claims

Data: ``cnnlib.data.load_mnist`` (Keras cache, ``CNNLIB_MNIST`` or the offline fallback).
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

ARCHITECTURES = {
    "original": "conv 3x3x8 same relu -> avgPool -> flatten -> dense 128 relu -> dense 10 softmax (SGD lr 0.01)",
    "lenet": "conv 3x3x32 -> maxPool -> conv 3x3x64 -> maxPool -> flatten -> dense 128 -> dense 10 (Adam lr 0.001)",
}


# ---------------------------------------------------------------- one run (child process)
def _data(n_train, n_test):
    from cnnlib.data import load_mnist
    data = load_mnist(n_train=n_train, n_val=0, verbose=False)
    x_test, y_test = data.x_test[:n_test], data.y_test[:n_test]
    mean, std = data.x_train.mean(), data.x_train.std()
    norm = lambda x: ((x - mean) / std).astype("float32")       # noqa: E731  same for both
    return norm(data.x_train), data.y_train, norm(x_test), y_test, data.source


def _cnnlib_run(arch, epochs, batch, x, y, xt, yt, seed):
    import numpy as np
    from cnnlib import Sequential, get_optimizer, layer
    if arch == "original":
        layers = [layer("conv", (3, 3, 1, 8), (28, 28, 1), "relu", "same"), layer("avgPool"),
                  layer("flatten", 14 * 14 * 8, (14, 14, 8)), layer("dense", 128, 1568, "relu"),
                  layer("dense", 10, 128, "softmax")]
        opt = get_optimizer("sgd", lr=0.01)
    else:
        layers = [layer("conv", (3, 3, 1, 32), (28, 28, 1), "relu", "valid"), layer("maxPool"),
                  layer("conv", (3, 3, 32, 64), (13, 13, 32), "relu", "valid"), layer("maxPool"),
                  layer("flatten", 1600, (5, 5, 64)), layer("dense", 128, 1600, "relu"),
                  layer("dense", 10, 128, "softmax")]
        opt = get_optimizer("adam", lr=0.001)
    model = Sequential(layers, seed=seed)
    trainable = model.trainable_layers
    rng = np.random.default_rng(seed)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            model.compute_gradients(x[idx], y[idx])
            opt.step(trainable)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    _, acc, _ = model.evaluate(xt, yt, batch_size=500)
    return times, time.perf_counter() - t0, acc


def _keras_run(arch, epochs, batch, x, y, xt, yt, seed):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from tensorflow import keras
    tf.keras.utils.set_random_seed(seed)
    L = keras.layers
    if arch == "original":
        layers = [L.Conv2D(8, 3, padding="same", activation="relu"), L.AveragePooling2D(2),
                  L.Flatten(), L.Dense(128, activation="relu"), L.Dense(10, activation="softmax")]
        opt = keras.optimizers.SGD(learning_rate=0.01)
    else:
        layers = [L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2),
                  L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2), L.Flatten(),
                  L.Dense(128, activation="relu"), L.Dense(10, activation="softmax")]
        opt = keras.optimizers.Adam(learning_rate=0.001)
    model = keras.Sequential([keras.Input((28, 28, 1))] + layers)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    times = []
    model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=True, verbose=0, callbacks=[Timer()])
    t0 = time.perf_counter()
    _, acc = model.evaluate(xt, yt, batch_size=500, verbose=0)
    return times, time.perf_counter() - t0, float(acc)


def child(args):
    x, y, xt, yt, source = _data(args.n_train, args.n_test)
    run = _cnnlib_run if args.framework == "cnnlib" else _keras_run
    times, eval_time, acc = run(args.arch, args.epochs, args.batch_size, x, y, xt, yt, args.seed)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024    # Linux: KiB
    print(json.dumps({"framework": args.framework, "arch": args.arch, "epoch_times": times,
                      "eval_time": eval_time, "accuracy": acc, "peak_mb": peak_mb,
                      "source": source, "n_train": len(x), "n_test": len(xt)}))


# ---------------------------------------------------------------- driver
def _spawn(framework, arch, opts):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--framework", framework,
           "--arch", arch, "--epochs", str(opts.epochs), "--batch-size", str(opts.batch_size),
           "--n-train", str(opts.n_train), "--n-test", str(opts.n_test), "--seed", str(opts.seed)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"benchmark child failed: {framework} {arch} (exit {out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _steady(times):
    """Seconds per epoch: the mean of epochs after the first when there are
    several (Keras traces its graph in epoch 1), else the only epoch."""
    return statistics.mean(times[1:]) if len(times) > 1 else times[0]


def machine_description():
    import numpy as np
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = f"{names[0]} x {len(names)}" if names else cpu
    except OSError:
        pass
    return (f"{cpu}; {os.cpu_count()} logical CPUs; Python {platform.python_version()}; "
            f"NumPy {np.__version__}; {platform.system()} {platform.release()}")


def table(results):
    n_test = results[0]["n_test"]
    head = (f"| model | framework | s / epoch | eval {n_test:,} (s) | test acc | peak RSS (MB) |\n"
            "|---|---|---:|---:|---:|---:|")
    rows = [head]
    for arch in ARCHITECTURES:
        for fw in ("cnnlib", "keras"):
            runs = [r for r in results if r["arch"] == arch and r["framework"] == fw]
            if not runs:
                continue
            ep = statistics.median(_steady(r["epoch_times"]) for r in runs)
            ev = statistics.median(r["eval_time"] for r in runs)
            acc = statistics.median(r["accuracy"] for r in runs)
            mem = max(r["peak_mb"] for r in runs)
            rows.append(f"| {arch} | {fw} | {ep:.2f} | {ev:.3f} | {acc:.4f} | {mem:.0f} |")
        c = [r for r in results if r["arch"] == arch and r["framework"] == "cnnlib"]
        k = [r for r in results if r["arch"] == arch and r["framework"] == "keras"]
        if c and k:
            ratio = lambda f: statistics.median(f(r) for r in c) / statistics.median(f(r) for r in k)  # noqa: E731
            rows.append(f"| {arch} | **cnnlib / Keras** | **{ratio(lambda r: _steady(r['epoch_times'])):.2f}x** "
                        f"| **{ratio(lambda r: r['eval_time']):.2f}x** | | "
                        f"**{max(r['peak_mb'] for r in c) / max(r['peak_mb'] for r in k):.2f}x** |")
    return "\n".join(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small data, 1 round: a smoke test")
    p.add_argument("--arch", choices=list(ARCHITECTURES) + ["all"], default="all")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds per framework")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--n-train", type=int, default=60000)
    p.add_argument("--n-test", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", help="write the markdown table and raw JSON here (prefix)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--framework", choices=["cnnlib", "keras"], help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    if opts.child:
        return child(opts)
    if opts.quick:
        opts.rounds, opts.epochs, opts.n_train, opts.n_test = 1, 1, 1000, 500
    archs = list(ARCHITECTURES) if opts.arch == "all" else [opts.arch]
    results = []
    for arch in archs:
        for rnd in range(opts.rounds):
            order = ("cnnlib", "keras") if rnd % 2 == 0 else ("keras", "cnnlib")
            for fw in order:
                r = _spawn(fw, arch, opts)
                print(f"  {arch:8s} {fw:6s} round {rnd + 1}: epochs "
                      + ", ".join(f"{t:.2f}s" for t in r["epoch_times"])
                      + f"; eval {r['eval_time']:.3f}s; acc {r['accuracy']:.4f}; "
                        f"peak {r['peak_mb']:.0f} MB", flush=True)
                results.append(r)
    text = (f"Machine: {machine_description()}\n"
            f"Data: {results[0]['n_train']} train / {results[0]['n_test']} test images "
            f"({results[0]['source']}); batch {opts.batch_size}; {opts.epochs} epochs x "
            f"{opts.rounds} alternating rounds; s/epoch excludes epoch 1 when epochs > 1.\n\n"
            + table(results))
    print("\n" + text)
    if opts.output:
        with open(opts.output + ".md", "w") as f:
            f.write(text + "\n")
        with open(opts.output + ".json", "w") as f:
            json.dump(results, f, indent=1)
    for r in results:
        if not (0.0 <= r["accuracy"] <= 1.0) or not all(t > 0 for t in r["epoch_times"]):
            raise SystemExit(f"implausible result: {r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
