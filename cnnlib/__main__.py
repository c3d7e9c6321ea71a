"""``python -m cnnlib``: train the original README's example model on MNIST.

    conv 3x3x8 "same" relu -> avgPool -> flatten -> dense 128 relu -> dense 10 softmax

Without arguments it uses every available image (60,000 train / 10,000 test
with the full set; the 5,000-digit fallback offline), SGD, lr 0.01, batch 100,
one epoch, and prints the test accuracy.
"""
import argparse
import sys
import time
import warnings

from .factory import layer
from .training import MnistTraining, TrainingDivergedWarning


def build_parser():
    p = argparse.ArgumentParser(prog="python -m cnnlib", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=1, help="training epochs (default 1)")
    p.add_argument("--batch-size", type=int, default=100, help="mini-batch size (default 100)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default 0.01 for sgd/momentum, 0.001 for adam)")
    p.add_argument("--optimizer", choices=["sgd", "momentum", "adam"], default="sgd")
    p.add_argument("--train", type=int, default=None, help="training images (default: all)")
    p.add_argument("--val", type=int, default=None,
                   help="validation/test images, from the test set (default: all)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--dataset", choices=["mnist", "fashion_mnist"], default="mnist")
    p.add_argument("--save", metavar="PATH", help="save the trained model to PATH (.npz)")
    return p


class ProgressBar:
    """Step callback drawing ``epoch 1/3 [#####-----] 300/600 loss 0.41`` on stderr."""

    def __init__(self, epochs, stream=sys.stderr, width=30):
        self.epochs, self.stream, self.width = epochs, stream, width
        self._last = 0.0

    def __call__(self, trainer, info):
        now = time.perf_counter()
        if info["step"] != info["steps"] and now - self._last < 0.1:
            return
        self._last = now
        done = int(self.width * info["step"] / info["steps"])
        bar = "#" * done + "-" * (self.width - done)
        end = "\n" if info["step"] == info["steps"] else ""
        self.stream.write(f"\repoch {info['epoch']}/{self.epochs} [{bar}] "
                          f"{info['step']}/{info['steps']} loss {info['loss']:.4f}{end}")
        self.stream.flush()


def main(argv=None):
    args = build_parser().parse_args(argv)
    lr = args.lr if args.lr is not None else (0.001 if args.optimizer == "adam" else 0.01)
    try:
        trainer = MnistTraining(seed=args.seed, dataset=args.dataset)
        trainer.loadDataFromKeras(args.train, args.val)
        trainer.setBacthSize(args.batch_size)
        trainer.setLearningRate(lr)
        trainer.setOptimizer(args.optimizer)
        trainer.add(layer("conv", (3, 3, 1, 8), (28, 28, 1), "relu", "same"))
        trainer.add(layer("avgPool"))
        trainer.add(layer("flatten", 14 * 14 * 8, (14, 14, 8)))
        trainer.add(layer("dense", 128, 14 * 14 * 8, "relu"))
        trainer.add(layer("dense", 10, 128, "softmax"))
        print(trainer.model.summary())
        trainer.addCallback(ProgressBar(args.epochs), when="step")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TrainingDivergedWarning)
            trainer.trainingMnist(args.epochs)
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
        _, accuracy = trainer.testing()
        print(f"test accuracy: {accuracy:.4f} on {len(trainer.Y_test):,} images "
              f"({trainer.data_source})")
        if args.save:
            print(f"saved to {trainer.save(args.save)}")
    except (ValueError, TypeError, RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
