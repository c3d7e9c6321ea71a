"""``Sequential``: a stack of layers trained with softmax + cross-entropy.

Data flows one way::

    x (N, H, W, C) -> layer 0 -> layer 1 -> ... -> logits (N, K) -> softmax -> p (N, K)

The last layer must end in a softmax (a ``Dense(..., activation="softmax")``
or a separate ``Softmax`` layer). For training, its logits go to the fused
loss ``softmax_cross_entropy``, whose gradient ``(p - y) / N`` enters the
backward pass directly: the softmax Jacobian is never formed.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

from . import _checks, parallel
from .init import as_generator
from .layers import ActivatedLayer, Layer, Softmax
from .losses import softmax_cross_entropy

FORMAT = "cnnlib-sequential-1"
#: largest number of samples ``predict`` sends through the layers at once
PREDICT_CHUNK = 128


class Sequential:
    """An ordered list of layers.

    Args:
        layers: optional iterable of layers, added in order with ``add``.
        seed: optional int seed; if given, every layer's weights are redrawn from
            one ``numpy.random.Generator(seed)`` when added, so a run is reproducible.
        workers: threads to split each batch over (default: the available cores,
            see ``cnnlib.parallel``); 1 runs everything in the calling thread.
    """

    def __init__(self, layers=(), *, seed=None, workers=None):
        self.layers = []
        self._rng = None if seed is None else as_generator(seed)
        #: threads a batch is split over (default: the cores available; 1 = off)
        self.workers = parallel.available_workers() if workers is None else \
            _checks.positive_int("workers", workers)
        self._replicas = []
        for layer in layers:
            self.add(layer)

    # ------------------------------------------------------------ building
    def add(self, layer):
        """Append ``layer``, checking its declared input shape against the
        previous layer's output shape (``ValueError`` naming both)."""
        if not isinstance(layer, Layer):
            raise TypeError(f"add() expects a layer (e.g. layer('dense', 10, 128, 'softmax')), "
                            f"received {type(layer).__name__}: {layer!r}")
        if any(layer is other for other in self.layers):
            raise ValueError(f"this {layer.describe()} object is already in the model; "
                             "create a new layer instead of adding the same one twice")
        index = len(self.layers)
        if self.layers and self.layers[-1].built:
            prev = self.layers[-1]
            if layer.built and layer.input_shape != prev.output_shape:
                raise ValueError(
                    f"layer {index} ({layer.describe()}) expects input shape {layer.input_shape}, "
                    f"but layer {index - 1} ({prev.describe()}) outputs {prev.output_shape}")
            if not layer.built:
                try:
                    layer.build(prev.output_shape)
                except ValueError as err:
                    raise ValueError(f"layer {index} ({layer.describe()}) cannot follow layer "
                                     f"{index - 1} ({prev.describe()}), which outputs "
                                     f"{prev.output_shape}: {err}") from None
        if self._rng is not None and layer.built:
            layer.reset_parameters(self._rng)
        layer.needs_input_grad = index > 0
        self.layers.append(layer)
        return self

    def _build_from(self, sample_shape):
        """Build any unbuilt layers once the input shape is known."""
        shape = tuple(sample_shape)
        for index, layer in enumerate(self.layers):
            if not layer.built:
                layer.build(shape)
                if self._rng is not None:
                    layer.reset_parameters(self._rng)
            elif layer.input_shape != shape:
                raise ValueError(f"layer {index} ({layer.describe()}) expects input shape "
                                 f"{layer.input_shape}, but receives {shape}")
            shape = layer.output_shape

    @property
    def input_shape(self):
        return self.layers[0].input_shape if self.layers else None

    @property
    def output_shape(self):
        return self.layers[-1].output_shape if self.layers else None

    @property
    def dtype(self):
        for layer in self.layers:
            if layer.params:
                return layer.dtype
        return np.dtype(np.float32)

    def astype(self, dtype):
        """Convert every layer's parameters to float32 or float64; returns self."""
        for layer in self.layers:
            layer.astype(dtype)
        return self

    @property
    def trainable_layers(self):
        return [layer for layer in self.layers if layer.params]

    @property
    def n_params(self):
        return sum(layer.n_params for layer in self.layers)

    def _softmax_head(self, layers=None):
        """The Softmax whose logits feed the loss, and how many layers to skip
        (of ``layers``: the model's own by default, or a replica's)."""
        layers = self.layers if layers is None else layers
        if not layers:
            raise ValueError("the model has no layers; add some with add()")
        last = layers[-1]
        if isinstance(last, Softmax):
            return last, 1
        if isinstance(last, ActivatedLayer) and isinstance(last.activation, Softmax):
            return last.activation, 0
        raise ValueError(f"the last layer must end in a softmax for the cross-entropy loss, "
                         f"received {last.describe()}; use activation='softmax'")

    # ------------------------------------------------------------ passes
    def _check_input(self, x):
        if not self.layers:
            raise ValueError("the model has no layers; add some with add()")
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a numpy array, received {type(x).__name__}")
        if not self.layers[0].built:
            if x.ndim < 2:
                raise ValueError(f"x must be a batch (N, ...) with at least 2 dimensions, "
                                 f"received shape {x.shape}")
            self._build_from(x.shape[1:])
        elif self.layers[-1].output_shape is None:
            self._build_from(self.input_shape)
        _checks.input_array("x", x, self.input_shape)
        return x.astype(self.dtype, copy=False)

    def _forward(self, x, layers=None):
        """Unchecked forward pass through ``layers`` (the model's by default)."""
        for layer in self.layers if layers is None else layers:
            x = layer._forward(x)
        return x

    def forward(self, x):
        """x (N, *input_shape) -> output of the last layer (N, *output_shape).

        Float64 input to a float32 model is cast to float32 (and vice versa).
        """
        return self._forward(self._check_input(x))

    def backward(self, dout):
        """Back-propagate ``dout = dL/d(output)`` through every layer; fills each
        layer's ``grads`` and returns ``dL/dx`` (``None`` for the first layer)."""
        if not isinstance(dout, np.ndarray) or dout.shape[1:] != self.output_shape:
            got = dout.shape if isinstance(dout, np.ndarray) else type(dout).__name__
            raise ValueError(f"dout must have shape (N, *{self.output_shape}), received {got}")
        dout = dout.copy()                  # the layers may overwrite it; the caller's stays
        for layer in reversed(self.layers):
            dout = layer._backward(dout)
        return dout

    def compute_gradients(self, x, labels):
        """One forward and backward pass on a batch; fills every layer's ``grads``.

        Args:
            x: (N, *input_shape) floats.
            labels: (N,) integer class labels.

        Returns:
            ``(loss, probs)``: the mean cross-entropy (float) and ``p`` (N, K).
        """
        x = self._check_input(x)
        self._softmax_head()
        labels = _checks.labels_array("labels", labels, x.shape[0], self.output_shape[0])
        parts = parallel.slices(x.shape[0], self.workers)
        if len(parts) == 1:
            return self._gradients(self.layers, x, labels)
        stacks = self._stacks(len(parts))
        results = parallel.run([lambda k=k, part=part: self._gradients(stacks[k], x[part],
                                                                       labels[part])
                                for k, part in enumerate(parts)])
        # Mean over the batch = slice means weighted by slice size.
        weights = [(part.stop - part.start) / x.shape[0] for part in parts]
        for i, layer in enumerate(self.layers):
            for key in layer.params:
                total = weights[0] * stacks[0][i].grads[key]
                for k in range(1, len(parts)):
                    total += weights[k] * stacks[k][i].grads[key]
                layer.grads[key] = total.astype(layer.params[key].dtype, copy=False)
        loss = sum(w * r[0] for w, r in zip(weights, results))
        return loss, np.concatenate([r[1] for r in results])

    def _gradients(self, layers, x, labels):
        """Forward and backward through ``layers`` (the model's or a replica)."""
        head, skip = self._softmax_head(layers)
        probs = self._forward(x, layers)
        loss, dlogits, _ = softmax_cross_entropy(head.logits, labels)
        stack = layers[:len(layers) - skip]
        # The fused gradient (p - y) / N is dL/dlogits: it skips the softmax itself.
        dout = stack[-1]._backward_linear(dlogits) if skip == 0 else stack[-1]._backward(dlogits)
        for layer in reversed(stack[:-1]):
            dout = layer._backward(dout)
        return loss, probs

    def _stacks(self, count):
        """The model's layers plus ``count - 1`` replicas sharing their parameters."""
        fresh = (len(self._replicas) < count - 1 or any(
            len(rep) != len(self.layers) or
            any(r.params is not l.params for r, l in zip(rep, self.layers))
            for rep in self._replicas))
        if fresh:
            self._replicas = [[layer._replica() for layer in self.layers]
                              for _ in range(count - 1)]
        return [self.layers] + self._replicas[:count - 1]

    # ------------------------------------------------------------ inference
    def predict(self, x, batch_size=500):
        """Outputs (N, K) for ``x`` (N, *input_shape), at most ``batch_size``
        (and at most ``PREDICT_CHUNK``) samples at a time, so memory stays
        bounded however large ``x`` is. Batches are shared among the workers."""
        batch_size = _checks.positive_int("batch_size", batch_size)
        x = self._check_input(x)
        out = np.empty((x.shape[0],) + self.output_shape, dtype=self.dtype)
        # Beyond ~128 samples the im2col matrices outgrow the CPU caches and every
        # pass slows down (measured: 10k LeNet predictions take 1.0 s in chunks of
        # 128, 2.0 s in chunks of 500), so larger batches are cut smaller.
        batch_size = min(batch_size, PREDICT_CHUNK)
        starts = list(range(0, x.shape[0], batch_size))
        groups = [starts[k::self.workers] for k in range(self.workers)]
        groups = [g for g in groups if g]
        stacks = self._stacks(len(groups))

        def work(layers, group):
            for start in group:
                out[start:start + batch_size] = self._forward(x[start:start + batch_size], layers)

        parallel.run([lambda k=k, g=g: work(stacks[k], g) for k, g in enumerate(groups)])
        return out

    def evaluate(self, x, labels, batch_size=500):
        """Mean cross-entropy and accuracy on ``(x, labels)``, in batches.

        Returns ``(loss, accuracy, probs)`` with ``probs`` (N, K).
        """
        probs = self.predict(x, batch_size)
        labels = _checks.labels_array("labels", labels, probs.shape[0], probs.shape[1])
        picked = probs[np.arange(len(labels)), labels].astype(np.float64)
        loss = float(-np.log(np.maximum(picked, np.finfo(np.float64).tiny)).mean())
        accuracy = float((probs.argmax(axis=1) == labels).mean())
        return loss, accuracy, probs

    # ------------------------------------------------------------ description
    def summary(self):
        """A table of layers, output shapes and parameter counts (as a string)."""
        rows = [("#", "layer", "output shape", "params")]
        for i, layer in enumerate(self.layers):
            shape = "?" if layer.output_shape is None else str((None,) + layer.output_shape)
            rows.append((str(i), layer.describe(), shape, f"{layer.n_params:,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        line = "-" * (sum(widths) + 6)
        fmt = lambda r: "  ".join(v.ljust(w) if c < 3 else v.rjust(w)       # noqa: E731
                                  for c, (v, w) in enumerate(zip(r, widths)))
        body = [fmt(rows[0]), line] + [fmt(r) for r in rows[1:]]
        inp = "?" if self.input_shape is None else str((None,) + self.input_shape)
        return "\n".join([f"Sequential, input {inp}", line] + body +
                         [line, f"total parameters: {self.n_params:,}"])

    def __repr__(self):
        return f"Sequential({len(self.layers)} layers, {self.n_params:,} parameters)"

    # ------------------------------------------------------------ persistence
    def save(self, path, metadata=None):
        """Write architecture and weights to a ``.npz`` file (no pickle).

        ``metadata`` is an optional JSON-serialisable dict stored alongside
        (``MnistTraining`` keeps its settings and history there).

        The file is written to a temporary name and renamed into place, so an
        interrupted save never leaves a half-written model. Returns the path.
        """
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        if self.layers and self.layers[-1].output_shape is None:
            raise ValueError("cannot save a model whose shapes are unknown; run it once first")
        arch = [{"class": type(layer).__name__, "config": layer.get_config(),
                 "input_shape": list(layer.input_shape)} for layer in self.layers]
        arrays = {"format": np.array(FORMAT), "architecture": np.array(json.dumps(arch)),
                  "metadata": np.array(json.dumps(metadata or {}))}
        for i, layer in enumerate(self.layers):
            for key, value in layer.params.items():
                arrays[f"layer{i}/{key}"] = value
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".cnnlib-", suffix=".npz.tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)       # mkstemp makes 0600; use the usual mode
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        return path

    @classmethod
    def load(cls, path, return_metadata=False):
        """Rebuild a model saved with ``save``. A corrupt, foreign or inconsistent
        file raises ``ValueError`` naming the file and the problem. With
        ``return_metadata`` returns ``(model, metadata_dict)``."""
        path = os.fspath(path)
        if not os.path.exists(path) and os.path.exists(path + ".npz"):
            path += ".npz"                      # save() adds the extension
        if not os.path.exists(path):
            raise FileNotFoundError(f"no model file at {path!r}")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            raise ValueError(f"{path!r} is not a readable .npz model file: {err}") from err
        if str(arrays.get("format", "")) != FORMAT or "architecture" not in arrays:
            raise ValueError(f"{path!r} is not a cnnlib model file (format tag missing or "
                             f"unknown: {str(arrays.get('format', None))!r})")
        try:
            arch = json.loads(str(arrays["architecture"]))
            model = cls()
            for spec in arch:
                layer_cls = Layer.registry[spec["class"]]
                layer = layer_cls(**spec["config"])
                if not layer.built:
                    layer.build(spec["input_shape"])
                model.add(layer)
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as err:
            raise ValueError(f"{path!r}: the stored architecture is invalid ({err})") from err
        for i, layer in enumerate(model.layers):
            for key, current in layer.params.items():
                stored = arrays.get(f"layer{i}/{key}")
                if stored is None:
                    raise ValueError(f"{path!r}: weights 'layer{i}/{key}' are missing")
                if stored.shape != current.shape or stored.dtype.kind != "f":
                    raise ValueError(f"{path!r}: weights 'layer{i}/{key}' have shape "
                                     f"{stored.shape} ({stored.dtype}), but layer {i} "
                                     f"({layer.describe()}) needs {current.shape}")
                layer.params[key] = stored.copy()
                layer.dtype = stored.dtype
        if not return_metadata:
            return model
        try:
            metadata = json.loads(str(arrays.get("metadata", "{}")))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path!r}: the stored metadata is invalid ({err})") from err
        return model, metadata
