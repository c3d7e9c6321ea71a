"""An ipywidgets panel to train an ``MnistTraining`` model by hand.

Only the notebooks import this module; the NumPy core never does. It needs
ipywidgets and matplotlib::

    from cnnlib.widgets import TrainingPanel
    panel = TrainingPanel(trainer)   # trainer: data loaded, layers added
    panel                            # last expression of a cell: shows the panel

Pick a learning rate, batch size, number of epochs and optimiser, press
*Train*, and watch the loss curve redraw while the model trains. The panel
needs a live kernel; a saved notebook only keeps its last state.

Every control carries a CSS class so that browser tests can find it:
``cnnlib-lr``, ``cnnlib-batch``, ``cnnlib-epochs``, ``cnnlib-optimizer``,
``cnnlib-train``, ``cnnlib-status``, ``cnnlib-plot`` and ``cnnlib-output``
(the whole panel is ``cnnlib-panel``).

Why an ``Image`` widget for the plot: training runs synchronously in the
kernel, and a widget's new value is sent to the browser as soon as it is set,
so the picture updates during training. ``clear_output`` would not (and nbval
does not understand it).
"""
import html
import io
import re
import time
import traceback
import warnings

import numpy as np

from .plots import running_mean
from .training import TrainingDivergedWarning

__all__ = ["TrainingPanel"]

BATCH_SIZES = [16, 32, 64, 100, 128, 256]
OPTIMIZERS = ["sgd", "momentum", "adam"]
LR_MIN_EXPONENT, LR_MAX_EXPONENT = -4, 0      # learning rate from 1e-4 to 1
RUNNING_MEAN_STEPS = 20
ERROR_COLOUR = "#b00020"
FIGURE_SIZE, DPI = (6, 3.2), 80               # inches, dots per inch -> a 480 x 256 picture


class TrainingPanel:
    """Controls + live loss plot for an ``MnistTraining`` that is ready to train.

    Args:
        trainer: a ``cnnlib.MnistTraining`` with data loaded and layers added.
        epochs: initial value of the epochs slider (1..10).
        plot_every: redraw the loss plot every this many steps.

    Attributes:
        widget: the ``ipywidgets.VBox`` holding everything.
        learning_rate, batch_size, epochs, optimizer, train_button, status,
        plot, output: the individual widgets.
        steps, losses: global step and batch loss of every step trained here.
        redraws: how many times the plot has been redrawn.
    """

    def __init__(self, trainer, epochs=1, plot_every=10):
        import ipywidgets as widgets

        if not hasattr(trainer, "trainingMnist") or not hasattr(trainer, "addCallback"):
            raise TypeError(f"trainer must be a cnnlib.MnistTraining, received "
                            f"{type(trainer).__name__}")
        if isinstance(plot_every, bool) or not isinstance(plot_every, (int, np.integer)) \
                or plot_every < 1:
            raise ValueError(f"plot_every must be an int >= 1, received {plot_every!r}")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) \
                or not 1 <= epochs <= 10:
            raise ValueError(f"epochs must be an int from 1 to 10, received {epochs!r}")
        self.trainer = trainer
        self.plot_every = int(plot_every)
        self.steps, self.losses = [], []
        self.runs = []                 # (first global step, label) of each training run
        self.redraws = 0
        self.training = False
        self._run_epochs = 1
        self._start_epoch = 0

        wide = {"description_width": "initial"}
        rate = float(np.clip(trainer.rate, 10.0 ** LR_MIN_EXPONENT, 10.0 ** LR_MAX_EXPONENT))
        self.learning_rate = widgets.FloatLogSlider(
            value=rate, base=10, min=LR_MIN_EXPONENT, max=LR_MAX_EXPONENT, step=0.1,
            description="learning rate", readout_format=".1e", continuous_update=False,
            style=wide)
        sizes = sorted(set(BATCH_SIZES) | {int(trainer.batchSize)})
        self.batch_size = widgets.Dropdown(options=sizes, value=int(trainer.batchSize),
                                           description="batch size", style=wide,
                                           layout=widgets.Layout(width="160px"))
        self.epochs = widgets.IntSlider(value=int(epochs), min=1, max=10, step=1,
                                        description="epochs", continuous_update=False,
                                        style=wide)
        current = getattr(trainer, "_optimizer_name", "sgd")
        self.optimizer = widgets.Dropdown(options=OPTIMIZERS,
                                          value=current if current in OPTIMIZERS else "sgd",
                                          description="optimizer", style=wide,
                                          layout=widgets.Layout(width="180px"))
        self.train_button = widgets.Button(description="Train", icon="play",
                                           button_style="primary",
                                           tooltip="train with these settings")
        self.status = widgets.HTML(value="ready")
        # Fixed width: a VBox would otherwise stretch (and blur) the picture.
        self.plot = widgets.Image(format="png",
                                  layout=widgets.Layout(width=f"{FIGURE_SIZE[0] * DPI}px"))
        self.output = widgets.Output()

        for control, css in ((self.learning_rate, "cnnlib-lr"), (self.batch_size, "cnnlib-batch"),
                             (self.epochs, "cnnlib-epochs"),
                             (self.optimizer, "cnnlib-optimizer"),
                             (self.train_button, "cnnlib-train"), (self.status, "cnnlib-status"),
                             (self.plot, "cnnlib-plot"), (self.output, "cnnlib-output")):
            control.add_class(css)
        self.train_button.on_click(lambda _button: self.train())

        self._figure, self._axes = self._make_figure()
        self._redraw(title="Loss (press Train)")
        self.redraws = 0               # the placeholder picture does not count

        self.widget = widgets.VBox([
            widgets.HBox([self.learning_rate, self.batch_size]),
            widgets.HBox([self.epochs, self.optimizer]),
            widgets.HBox([self.train_button, self.status]),
            self.plot,
            self.output,
        ])
        self.widget.add_class("cnnlib-panel")

    # ------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs):
        """Show the panel when it is the last expression of a cell or passed to display()."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if bundle is not None:   # a short text for viewers without widgets (e.g. GitHub)
            bundle["text/plain"] = ("TrainingPanel: interactive controls; they need a live "
                                    "kernel (run the notebook in JupyterLab)")
        return bundle

    def __repr__(self):
        return (f"TrainingPanel({len(self.losses)} steps trained, status: "
                f"{self.status_text!r})")

    @property
    def status_text(self):
        """The status line without its HTML markup."""
        return html.unescape(re.sub(r"<[^>]+>", "", self.status.value))

    def _set_status(self, text, error=False):
        text = html.escape(text)
        self.status.value = (f'<span style="color:{ERROR_COLOUR}">{text}</span>' if error
                             else text)

    # ------------------------------------------------------------ training
    def train(self):
        """Train with the current control values, as the Train button does.

        Errors never escape: a divergence warning or an exception is shown in
        red in the status line (the full traceback goes to the output area).
        """
        if self.training:          # a click that arrives while a run is going on
            return
        trainer = self.trainer
        self.training = True
        self.train_button.disabled = True
        callback = None
        started = time.perf_counter()
        try:
            lr, batch_size = float(self.learning_rate.value), int(self.batch_size.value)
            epochs, optimizer = int(self.epochs.value), self.optimizer.value
            trainer.setLearningRate(lr)
            trainer.setBatchSize(batch_size)
            if optimizer != getattr(trainer, "_optimizer_name", None):
                trainer.setOptimizer(optimizer)      # new optimiser state (e.g. Adam moments)
            self._run_epochs = epochs
            self._start_epoch = len(trainer.history["loss"])
            steps_before = len(self.steps)
            self.runs.append((len(trainer.step_history["step"]) + 1,
                              f"lr {lr:.1e}, batch {batch_size}, {optimizer}"))
            self._set_status(f"training: epoch 1/{epochs} ...")
            callback = trainer.addCallback(self._on_step, when="step")
            failure = None
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with self.output:      # the trainer's epoch lines go to the output area
                    try:
                        trainer.trainingMnist(epochs)
                    except Exception as err:     # noqa: BLE001 -- re-raised below, outside
                        failure = err            # the Output widget (which would swallow it)
            if failure is not None:
                raise failure
            diverged = [w for w in caught if issubclass(w.category, TrainingDivergedWarning)]
            for w in caught:                         # pass on anything else (e.g. data notes)
                if w not in diverged:
                    with self.output:
                        print(f"{w.category.__name__}: {w.message}")
            self._redraw()
            seconds = time.perf_counter() - started
            if diverged:
                self._set_status(str(diverged[-1].message), error=True)
            else:
                done = len(trainer.history["loss"]) - self._start_epoch
                if done > 0:
                    accuracy = trainer.history["acu_t"][-1]
                else:                                # stopped before an epoch ended
                    accuracy = trainer.testing()[1]
                self._set_status(f"done: validation accuracy {accuracy:.4f} "
                                 f"({done} epoch{'s' if done != 1 else ''}, {seconds:.1f} s)")
        except Exception as err:                     # noqa: BLE001 -- shown, never raised
            self._set_status(f"error: {type(err).__name__}: {err}", error=True)
            with self.output:
                print("".join(traceback.format_exception(type(err), err, err.__traceback__)))
        finally:
            if callback is not None:
                trainer.removeCallback(callback)
                if len(self.steps) == steps_before:   # no step was taken: forget the run
                    self.runs.pop()
            self.training = False
            self.train_button.disabled = False

    def _on_step(self, trainer, info):
        """Step callback: record the loss, update the status, redraw now and then."""
        self.steps.append(info["global_step"])
        self.losses.append(float(info["loss"]))
        epoch = info["epoch"] - self._start_epoch
        self._set_status(f"epoch {epoch}/{self._run_epochs} - step {info['step']}/"
                         f"{info['steps']} - loss {info['loss']:.4f}")
        if len(self.losses) % self.plot_every == 0:
            self._redraw()

    # ------------------------------------------------------------ plot
    @staticmethod
    def _make_figure():
        # A bare Figure (not pyplot): the inline backend never shows it by itself.
        from matplotlib.figure import Figure
        figure = Figure(figsize=FIGURE_SIZE)
        figure.subplots_adjust(left=0.11, right=0.97, bottom=0.15, top=0.9)  # cheaper than
        return figure, figure.subplots()                                      # tight_layout

    def _redraw(self, title=None):
        ax = self._axes
        ax.clear()
        if self.losses:
            steps, losses = np.asarray(self.steps), np.asarray(self.losses)
            ax.plot(steps, losses, lw=1, alpha=0.45, label="batch loss")
            ax.plot(steps, running_mean(losses, RUNNING_MEAN_STEPS), lw=2,
                    label=f"running mean ({RUNNING_MEAN_STEPS} steps)")
            for first_step, _label in self.runs[1:]:       # where each later run starts
                ax.axvline(first_step - 0.5, color="grey", ls=":", lw=1)
            if self.runs:
                ax.text(0.01, 0.02, "last run: " + self.runs[-1][1], transform=ax.transAxes,
                        fontsize=8, color="dimgrey")
            ax.legend(loc="upper right", fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy")
        ax.set_title(title or f"Loss ({len(self.losses)} steps)")
        ax.grid(alpha=0.3)
        buffer = io.BytesIO()
        self._figure.savefig(buffer, format="png", dpi=DPI)
        self.plot.value = buffer.getvalue()
        self.redraws += 1

