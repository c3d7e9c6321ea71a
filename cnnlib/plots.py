"""Plots for the notebooks and ``MnistTraining``: curves, digits, confusion matrix,
and a live loss plot. matplotlib is imported when a function is first called,
so the core stays NumPy-only.
"""
import numpy as np


def _plt():
    import matplotlib.pyplot as plt
    return plt


def running_mean(values, window):
    """Mean of the last ``window`` values at each position (fewer at the start),
    so even a short run gets a smoothed curve. (N,) -> (N,)."""
    sums = np.cumsum(np.concatenate([[0.0], np.asarray(values, dtype=np.float64)]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def history_curves(history, metric="loss", ax=None):
    """Train vs validation curves per epoch from a history dict.

    ``metric`` is ``"loss"`` (keys ``loss``/``loss_t``) or ``"accuracy"``
    (keys ``acu``/``acu_t``). Returns the matplotlib Axes.
    """
    plt = _plt()
    train_key, val_key, label = {"loss": ("loss", "loss_t", "Loss (cross-entropy)"),
                                 "accuracy": ("acu", "acu_t", "Accuracy")}[metric]
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    epochs = np.arange(1, len(history[train_key]) + 1)
    ax.plot(epochs, history[train_key], "o-", label=f"training {metric}")
    if any(v == v for v in history[val_key]):          # skip an all-NaN validation curve
        ax.plot(epochs, history[val_key], "s--", label=f"validation {metric}")
    ax.set_xlabel("Epoch")
    ax.set_ylabel(label)
    ax.set_title(f"{label} per epoch")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def image_grid(images, titles=None, ncols=10, cmap="gray", size=1.1, suptitle=None):
    """Show images (N, H, W) or (N, H, W, 1) in a grid with optional titles."""
    plt = _plt()
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[..., 0]                          # (N, H, W)
    n = len(images)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.45) * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(images[k], cmap=cmap)
            if titles is not None:
                ax.set_title(str(titles[k]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def confusion_matrix(labels, predictions, n_classes=10):
    """Counts ``C[true, predicted]`` as an (n_classes, n_classes) int array."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels), np.asarray(predictions)), 1)
    return counts


def plot_confusion_matrix(labels, predictions, n_classes=10, ax=None):
    """Heat map of the confusion matrix with the counts written in each cell."""
    plt = _plt()
    counts = confusion_matrix(labels, predictions, n_classes)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(counts, cmap="Blues")
    for (i, j), c in np.ndenumerate(counts):
        ax.text(j, i, str(c), ha="center", va="center", fontsize=7,
                color="white" if c > counts.max() / 2 else "black")
    ax.set_xticks(range(n_classes))
    ax.set_yticks(range(n_classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")
    return ax


class LiveLossPlot:
    """A loss plot that redraws in place while training runs.

    It uses a display handle (``display(fig, display_id=True)`` then
    ``handle.update(fig)``), which works in JupyterLab and under nbval.
    Use it as a step callback::

        live = LiveLossPlot()
        trainer.addCallback(live.on_step, when="step")

    ``every`` sets how many steps pass between redraws; ``close()`` leaves
    the last figure in the output so a saved notebook shows it.
    """

    def __init__(self, every=20, title="Training loss", out=None):
        plt = _plt()
        from IPython.display import display
        self.every = every
        self.steps, self.losses = [], []
        self.fig, self.ax = plt.subplots(figsize=(6, 3.2))
        (self.line,) = self.ax.plot([], [], lw=1, alpha=0.5, label="batch loss")
        (self.smooth,) = self.ax.plot([], [], lw=2, label="mean of the last 50 steps")
        from matplotlib.ticker import MaxNLocator
        self.ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        self.ax.set_xlabel("step")
        self.ax.set_ylabel("cross-entropy")
        self.ax.set_title(title)
        self.ax.grid(alpha=0.3)
        self.ax.legend(loc="upper right")
        plt.close(self.fig)                 # we display it ourselves, not at cell end
        self.out = out
        if out is not None:
            with out:
                self.handle = display(self.fig, display_id=True)
        else:
            self.handle = display(self.fig, display_id=True)
        self.redraws = 0

    def on_step(self, trainer, info):
        """Step callback: record ``info["loss"]``, redraw every ``every`` steps."""
        self.steps.append(info["global_step"])
        self.losses.append(info["loss"])
        if len(self.steps) % self.every == 0:
            self.redraw()

    def redraw(self):
        if not self.steps:
            return
        self.line.set_data(self.steps, self.losses)
        self.smooth.set_data(self.steps, running_mean(self.losses, 50))
        self.ax.relim()
        self.ax.autoscale_view()
        self.handle.update(self.fig)
        self.redraws += 1

    def close(self):
        self.redraw()
