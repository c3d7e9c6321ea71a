"""Accuracy runs on full MNIST through the original ``MnistTraining`` API.

    python benchmarks/accuracy.py            # all three runs below
    python benchmarks/accuracy.py lenet      # one of: sgd, adam, lenet

* ``sgd``:   the original example model, original defaults (SGD, lr 0.01, batch 100), 3 epochs
* ``adam``:  the same model with Adam (lr 0.002), 1 epoch
* ``lenet``: conv 3x3x32 -> maxPool -> conv 3x3x64 -> maxPool -> flatten -> dense 128 relu
             -> dense 10 softmax, Adam (lr 0.001), 5 epochs

Each run is a separate process so that its peak resident memory is its own.
Data: ``CNNLIB_MNIST``, the Keras cache, or a download (see cnnlib.data).
"""
import json
import resource
import subprocess
import sys

RUNS = {"sgd": ("original", "sgd", 0.01, 3), "adam": ("original", "adam", 0.002, 1),
        "lenet": ("lenet", "adam", 0.001, 5)}


def run(name):
    from cnnlib import MnistTraining, layer
    arch, optimizer, lr, epochs = RUNS[name]
    t = MnistTraining(seed=0)
    t.loadDataFromKeras(60000, 10000)
    t.setBacthSize(100)
    t.setLearningRate(lr)
    t.setOptimizer(optimizer)
    if arch == "original":
        t.add(layer("conv", (3, 3, 1, 8), (28, 28, 1), "relu", "same"))
        t.add(layer("avgPool"))
        t.add(layer("flatten", 14 * 14 * 8, (14, 14, 8)))
        t.add(layer("dense", 128, 14 * 14 * 8, "relu"))
    else:
        t.add(layer("conv", (3, 3, 1, 32), (28, 28, 1), "relu", "valid"))
        t.add(layer("maxPool"))
        t.add(layer("conv", (3, 3, 32, 64), (13, 13, 32), "relu", "valid"))
        t.add(layer("maxPool"))
        t.add(layer("flatten", 5 * 5 * 64, (5, 5, 64)))
        t.add(layer("dense", 128, 5 * 5 * 64, "relu"))
    t.add(layer("dense", 10, 128, "softmax"))
    t.trainingMnist(epochs)
    _, accuracy = t.testing()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"run": name, "test_accuracy": accuracy, "val_acc_per_epoch": t.acu_t,
                      "seconds_per_epoch": t.history["time"], "peak_rss_mb": round(peak)}))


def main(names):
    for name in names or list(RUNS):
        if name not in RUNS:
            raise SystemExit(f"unknown run {name!r}; choose from {', '.join(RUNS)}")
        subprocess.run([sys.executable, __file__, "--child", name], check=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        run(sys.argv[2])
    else:
        main(sys.argv[1:])
