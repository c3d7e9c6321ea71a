"""``MnistTraining``: the original project's workflow on top of the modern core.

The original API keeps working word for word::

    model = MnistTraining()
    model.loadDataFromKeras(1000, 100)        # n_train, n_val
    model.setBacthSize(100)                   # (sic) default 100
    model.setLearningRate(0.01)               # default 0.01
    model.add(layer("conv", (3, 3, 1, 8), (28, 28, 1), "relu", "same"))
    model.add(layer("avgPool"))
    model.add(layer("flatten", 14 * 14 * 8, (14, 14, 8)))
    model.add(layer("dense", 128, 14 * 14 * 8, "relu"))
    model.add(layer("dense", 10, 128, "softmax"))
    model.trainingMnist(3)
    probs, accuracy = model.testing(showInfo=True)

As in the original, ``loadDataFromKeras(n_train, n_val)`` takes ``n_train``
training images and uses the first ``n_val`` images of the official test set
as the validation set, which ``testing()`` then scores.

What is new: a fresh shuffle each epoch that keeps the last partial batch,
batched evaluation, optimisers (``setOptimizer``), seeds, callbacks for live
plots, save/load, and a guard against "exploding numbers": a non-finite (or
absurdly large) loss or gradient stops training and restores the last good
weights.
"""
import math
import time
import warnings

import numpy as np

from . import _checks
from .model import Sequential
from .optim import get_optimizer

N_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)


class TrainingDivergedWarning(RuntimeWarning):
    """Training stopped because the loss or a gradient exploded."""


class MnistTraining:
    """Train a ``Sequential`` CNN on MNIST with the original project's API.

    Args:
        seed: optional int for reproducible runs (weights, shuffling, data split).
        dataset: ``"mnist"`` (default) or ``"fashion_mnist"``.
        verbose: print one line per epoch (default True).
        standardize: rescale pixels to zero mean and unit variance using the
            training set's statistics (default True). Centred inputs let plain
            SGD converge several times faster; ``X_train``/``X_test`` hold the
            standardised images and ``preprocess(x)`` applies the same map to
            new [0, 1] images.
    """

    #: a batch loss above this is treated as divergence (log(10) = 2.3 at the start)
    max_loss = 1e3

    def __init__(self, seed=None, dataset="mnist", verbose=True, standardize=True):
        self.seed = seed
        self.standardize = bool(standardize)
        self.input_mean, self.input_std = 0.0, 1.0
        self.dataset = dataset
        self.verbose = verbose
        self.model = Sequential(seed=seed)
        self._rng = np.random.default_rng(seed)
        self.batchSize = 100
        self.rate = 0.01
        self._optimizer_name, self._optimizer_args = "sgd", {}
        self.optimizer = None
        self.history = {"loss": [], "acu": [], "loss_t": [], "acu_t": [], "time": []}
        self.step_history = {"step": [], "epoch": [], "loss": [], "acu": []}
        self._callbacks = {"step": [], "epoch": []}
        self.stop_training = False
        self.diverged = None
        self.data_source = None
        self.X_train = self.Y_train = self.X_test = self.Y_test = None

    # ------------------------------------------------------------ original API
    def loadDataFromKeras(self, n_train=None, n_val=None, path=None):
        """Load ``n_train`` training images and ``n_val`` validation images
        (``None``: all available).

        The data come from Keras's ``mnist.npz`` cache (downloaded if needed),
        ``path`` / ``CNNLIB_MNIST``, or the offline fallback; see
        ``cnnlib.data.load_mnist``. As in the original, the validation set is
        the first ``n_val`` images of the official test set.
        Images are float32 (N, 28, 28, 1); labels int64 (N,).
        """
        from .data import load_mnist
        if n_train is not None:
            n_train = _checks.positive_int("n_train", n_train)
        if n_val is not None:
            n_val = _checks.positive_int("n_val", n_val)
        data = load_mnist(n_train=n_train, n_val=0, dataset=self.dataset, path=path,
                          seed=0 if self.seed is None else self.seed, verbose=self.verbose)
        n_val = len(data.x_test) if n_val is None else n_val
        if n_val > len(data.x_test):
            raise ValueError(f"n_val = {n_val} but the test set ({data.source}) has only "
                             f"{len(data.x_test)} images")
        if self.standardize:
            self.input_mean = float(data.x_train.mean(dtype=np.float64))
            self.input_std = float(data.x_train.std(dtype=np.float64)) or 1.0
        self.X_train, self.Y_train = self.preprocess(data.x_train), data.y_train
        self.X_test, self.Y_test = self.preprocess(data.x_test[:n_val]), data.y_test[:n_val]
        self.data_source = data.source
        if self.verbose:
            print(f"Loaded {len(self.X_train):,} training and {len(self.X_test):,} validation "
                  f"images from {data.source}")
        return self

    def preprocess(self, images):
        """Map [0, 1] images (N, 28, 28, 1) to the network's input scale."""
        images = np.asarray(images, dtype=np.float32)
        if self.input_mean == 0.0 and self.input_std == 1.0:
            return images
        return (images - np.float32(self.input_mean)) / np.float32(self.input_std)

    def setBacthSize(self, n):
        """Set the mini-batch size (default 100). The original's spelling."""
        self.batchSize = _checks.positive_int("batch_size", n)

    setBatchSize = setBacthSize

    def setLearningRate(self, r):
        """Set the learning rate (default 0.01); takes effect at the next step."""
        self.rate = _checks.positive_float("learning_rate", r)
        if self.optimizer is not None:
            self.optimizer.lr = self.rate

    def add(self, layer):
        """Append a layer; its declared input shape must match the previous output."""
        try:
            self.model.add(layer)
        except ValueError as err:
            raise ValueError(f"add(): {err}") from None
        return self

    @property
    def layers(self):
        return self.model.layers

    # history lists under the original names
    loss = property(lambda self: self.history["loss"])
    acu = property(lambda self: self.history["acu"])
    loss_t = property(lambda self: self.history["loss_t"])
    acu_t = property(lambda self: self.history["acu_t"])

    # ------------------------------------------------------------ new API
    def setOptimizer(self, name="sgd", **hyperparameters):
        """Choose ``"sgd"`` (default), ``"momentum"`` or ``"adam"``.

        ``lr`` may be given here; otherwise the current learning rate is used
        (note Adam usually wants about 0.001). Other keywords go to the
        optimiser (``momentum``, ``nesterov``, ``beta1``, ``weight_decay``...).
        """
        if "lr" in hyperparameters:
            self.setLearningRate(hyperparameters.pop("lr"))
        get_optimizer(name, lr=self.rate, **hyperparameters)     # validate now
        self._optimizer_name, self._optimizer_args = name, hyperparameters
        self.optimizer = None

    def setSeed(self, seed):
        """Reseed shuffling (weights are seeded at construction: MnistTraining(seed=...))."""
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def addCallback(self, fn, when="step"):
        """Call ``fn(trainer, info)`` after every step or epoch (``when``).

        Step ``info``: epoch, step, steps (per epoch), global_step, loss, acu, lr, batch_size.
        Epoch ``info``: epoch, loss, acu, loss_t, acu_t, time.
        Setting ``trainer.stop_training = True`` ends training after the step.
        """
        _checks.choice("when", when, ("step", "epoch"))
        if not callable(fn):
            raise TypeError(f"fn must be callable, received {fn!r}")
        self._callbacks[when].append(fn)
        return fn

    def removeCallback(self, fn):
        for fns in self._callbacks.values():
            if fn in fns:
                fns.remove(fn)

    # ------------------------------------------------------------ training
    def _check_ready(self):
        if self.X_train is None:
            raise RuntimeError("no data: call loadDataFromKeras(n_train, n_val) first")
        if not self.model.layers:
            raise RuntimeError("the model has no layers: add(layer(...)) first")
        first = self.model.layers[0]
        if first.built and first.input_shape != IMAGE_SHAPE:
            raise ValueError(f"layer 0 ({first.describe()}) expects input shape "
                             f"{first.input_shape}, but MNIST images are {IMAGE_SHAPE}")
        self.model._build_from(IMAGE_SHAPE)
        last = self.model.layers[-1]
        try:
            self.model._softmax_head()
        except ValueError:
            raise ValueError(f"the last layer must be a 10-unit softmax, received "
                             f"{last.describe()}; add(layer('dense', 10, n, 'softmax'))") from None
        if last.output_shape != (N_CLASSES,):
            raise ValueError(f"the last layer must have 10 units (one per digit), received "
                             f"{last.describe()} with output {last.output_shape}")

    def _make_optimizer(self):
        if self.optimizer is None:
            self.optimizer = get_optimizer(self._optimizer_name, lr=self.rate,
                                           **self._optimizer_args)
        self.optimizer.lr = self.rate
        return self.optimizer

    def trainingMnist(self, epochs=1):
        """Train for ``epochs`` epochs; prints one line per epoch.

        Each epoch reshuffles the training set and visits every sample exactly
        once (the last batch may be smaller). Train loss/accuracy are means over
        the epoch's batches; validation figures come from a batched pass.
        Returns ``self.history``.
        """
        epochs = _checks.positive_int("epochs", epochs)
        self._check_ready()
        optimizer = self._make_optimizer()
        trainable = self.model.trainable_layers
        snapshot = [{k: v.copy() for k, v in layer.params.items()} for layer in trainable]
        n = len(self.X_train)
        bs = min(self.batchSize, n)
        steps = math.ceil(n / bs)
        self.stop_training, self.diverged = False, None
        start_epoch = len(self.history["loss"])
        for e in range(start_epoch + 1, start_epoch + epochs + 1):
            order = self._rng.permutation(n)
            t0, losses, accs, sizes = time.perf_counter(), [], [], []
            phase = "compute"
            try:
                for s in range(1, steps + 1):
                    idx = order[(s - 1) * bs: s * bs]
                    xb, yb = self.X_train[idx], self.Y_train[idx]
                    loss, probs = self.model.compute_gradients(xb, yb)
                    bad = self._diverged_reason(loss, trainable)
                    if bad:
                        self._restore(trainable, snapshot)
                        self._report_divergence(e, s, loss, bad)
                        return self.history
                    self._save(trainable, snapshot)
                    phase = "update"
                    optimizer.step(trainable)
                    phase = "record"
                    acc = float((probs.argmax(axis=1) == yb).mean())
                    losses.append(loss), accs.append(acc), sizes.append(len(idx))
                    gstep = len(self.step_history["step"]) + 1
                    for key, value in (("step", gstep), ("epoch", e), ("loss", loss),
                                       ("acu", acc)):
                        self.step_history[key].append(value)
                    info = {"epoch": e, "step": s, "steps": steps, "global_step": gstep,
                            "loss": loss, "acu": acc, "lr": optimizer.lr, "batch_size": bs}
                    for fn in self._callbacks["step"]:
                        fn(self, info)
                    phase = "compute"
                    if self.stop_training:
                        break
            except KeyboardInterrupt:
                if phase == "update":
                    self._restore(trainable, snapshot)  # undo a half-applied step
                done = min(len(v) for v in self.step_history.values())
                for values in self.step_history.values():
                    del values[done:]
                print(f"Training interrupted in epoch {e} after {len(losses)} steps; the weights "
                      f"and history of all completed steps are kept.")
                return self.history
            if losses:
                self._end_epoch(e, losses, accs, sizes, time.perf_counter() - t0)
            if self.stop_training:
                break
        return self.history

    def _diverged_reason(self, loss, layers):
        if not math.isfinite(loss):
            return f"the loss is {loss}"
        if loss > self.max_loss:
            return f"the loss reached {loss:.3g}"
        for layer in layers:
            for key, g in layer.grads.items():
                if not np.isfinite(g).all():
                    return f"the gradient of {layer.describe()} '{key}' is not finite"
        return None

    @staticmethod
    def _save(layers, snapshot):
        for layer, saved in zip(layers, snapshot):
            for key, value in layer.params.items():
                np.copyto(saved[key], value)

    @staticmethod
    def _restore(layers, snapshot):
        for layer, saved in zip(layers, snapshot):
            for key, value in saved.items():
                np.copyto(layer.params[key], value)

    def _report_divergence(self, epoch, step, loss, reason):
        self.diverged = {"epoch": epoch, "step": step, "loss": loss, "reason": reason}
        suggestion = self.rate / 10 if self.rate <= 1 else 0.01
        message = (f"Training stopped: exploding numbers in epoch {epoch}, step {step} "
                   f"({reason}). The weights were rolled back to the last step whose loss was "
                   f"finite and below {self.max_loss:g}, and the history of the completed steps "
                   f"is kept. Try a lower learning rate, e.g. setLearningRate({suggestion:g}).")
        warnings.warn(message, TrainingDivergedWarning, stacklevel=3)

    def _end_epoch(self, epoch, losses, accs, sizes, seconds):
        w = np.asarray(sizes, dtype=np.float64) / sum(sizes)
        loss, acc = float(np.dot(w, losses)), float(np.dot(w, accs))
        loss_t, acc_t, _ = self.model.evaluate(self.X_test, self.Y_test, self.batchSize * 5)
        for key, value in (("loss", loss), ("acu", acc), ("loss_t", loss_t), ("acu_t", acc_t),
                           ("time", seconds)):
            self.history[key].append(value)
        if self.verbose:
            print(f"[Epoch] {epoch}, Train accuracy = {acc:.4f}, Validation accuracy = "
                  f"{acc_t:.4f}, loss = {loss:.4f}, validation loss = {loss_t:.4f}, "
                  f"time = {seconds:.1f} s", flush=True)
        info = {"epoch": epoch, "loss": loss, "acu": acc, "loss_t": loss_t, "acu_t": acc_t,
                "time": seconds}
        for fn in self._callbacks["epoch"]:
            fn(self, info)

    # ------------------------------------------------------------ evaluation
    def testing(self, showInfo=False):
        """Score the validation set in batches.

        Returns ``(probabilities (N, 10), accuracy)``. With ``showInfo`` prints
        the accuracy and the indices of the misclassified images.
        """
        if self.X_test is None:
            raise RuntimeError("no data: call loadDataFromKeras(n_train, n_val) first")
        self._check_ready()
        probs = self.model.predict(self.X_test, batch_size=max(self.batchSize, 500))
        pred = probs.argmax(axis=1)
        accuracy = float((pred == self.Y_test).mean())
        if showInfo:
            print("Accuracy: ", accuracy)
            print("Tests failed: ", np.flatnonzero(pred != self.Y_test))
        return probs, accuracy

    def lossGraph(self):
        """Training and validation loss per epoch."""
        from .plots import _plt, history_curves
        history_curves(self.history, "loss")
        _plt().show()

    def accuracyGraph(self):
        """Training and validation accuracy per epoch."""
        from .plots import _plt, history_curves
        history_curves(self.history, "accuracy")
        _plt().show()

    def visualTest(self, n):
        """Show validation image ``n`` with the prediction and the label."""
        if self.X_test is None:
            raise RuntimeError("no data: call loadDataFromKeras(n_train, n_val) first")
        n = _checks.positive_int("n", n, allow_zero=True)
        if n >= len(self.X_test):
            raise ValueError(f"n must be < {len(self.X_test)} (the validation set size), "
                             f"received {n}")
        from .plots import _plt
        probs = self.model.predict(self.X_test[n:n + 1])
        print("Test", n)
        print("Predict:", int(probs.argmax()))
        print("Label:", int(self.Y_test[n]))
        plt = _plt()
        plt.figure(figsize=(2.5, 2.5))
        plt.imshow(self.X_test[n, :, :, 0] * self.input_std + self.input_mean, cmap="gray")
        plt.title(f"predicted {int(probs.argmax())}, label {int(self.Y_test[n])}")
        plt.axis("off")
        plt.show()

    # ------------------------------------------------------------ persistence
    def save(self, path):
        """Save the model (architecture + weights) and the training settings/history."""
        meta = {"batch_size": self.batchSize, "learning_rate": self.rate,
                "optimizer": self._optimizer_name, "optimizer_args": self._optimizer_args,
                "history": self.history, "seed": self.seed, "dataset": self.dataset,
                "input_mean": self.input_mean, "input_std": self.input_std}
        return self.model.save(path, metadata=meta)

    @classmethod
    def load(cls, path, verbose=True):
        """Rebuild a trainer saved with ``save`` (load data again to keep training)."""
        model, meta = Sequential.load(path, return_metadata=True)
        trainer = cls(seed=meta.get("seed"), dataset=meta.get("dataset", "mnist"),
                      verbose=verbose)
        trainer.model = model
        trainer.input_mean = meta.get("input_mean", 0.0)
        trainer.input_std = meta.get("input_std", 1.0)
        trainer.batchSize = meta.get("batch_size", 100)
        trainer.rate = meta.get("learning_rate", 0.01)
        trainer._optimizer_name = meta.get("optimizer", "sgd")
        trainer._optimizer_args = meta.get("optimizer_args", {})
        for key, values in meta.get("history", {}).items():
            trainer.history[key] = list(values)
        return trainer
