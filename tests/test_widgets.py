"""TrainingPanel (cnnlib/widgets.py) on a tiny synthetic MnistTraining, without a browser."""
import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("matplotlib")

from cnnlib import MnistTraining, layer  # noqa: E402
from cnnlib.widgets import TrainingPanel  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_trainer(n_train=64, n_val=32, seed=0):
    """A 4-filter CNN on random 'digits': a few milliseconds per step."""
    rng = np.random.default_rng(seed)
    trainer = MnistTraining(seed=seed, verbose=False)
    trainer.X_train = rng.random((n_train, 28, 28, 1), dtype=np.float32)
    trainer.Y_train = rng.integers(0, 10, n_train)
    trainer.X_test = rng.random((n_val, 28, 28, 1), dtype=np.float32)
    trainer.Y_test = rng.integers(0, 10, n_val)
    trainer.add(layer("conv", (3, 3, 1, 4), (28, 28, 1), "relu", "same"))
    trainer.add(layer("avgPool"))
    trainer.add(layer("flatten", 14 * 14 * 4, (14, 14, 4)))
    trainer.add(layer("dense", 10, 14 * 14 * 4, "softmax"))
    return trainer


def test_controls_have_the_contract_classes_and_initial_values():
    trainer = tiny_trainer()
    panel = TrainingPanel(trainer, epochs=2)
    classes = {"cnnlib-lr": panel.learning_rate, "cnnlib-batch": panel.batch_size,
               "cnnlib-epochs": panel.epochs, "cnnlib-optimizer": panel.optimizer,
               "cnnlib-train": panel.train_button, "cnnlib-status": panel.status,
               "cnnlib-plot": panel.plot, "cnnlib-output": panel.output}
    for css, control in classes.items():
        assert css in control._dom_classes, css
    assert panel.learning_rate.value == pytest.approx(0.01)
    assert (panel.learning_rate.min, panel.learning_rate.max) == (-4, 0)
    assert panel.batch_size.value == 100
    assert list(panel.batch_size.options) == [16, 32, 64, 100, 128, 256]
    assert panel.epochs.value == 2 and (panel.epochs.min, panel.epochs.max) == (1, 10)
    assert panel.optimizer.value == "sgd"
    assert panel.train_button.description == "Train" and panel.train_button.icon == "play"
    assert panel.plot.layout.width == "480px"                # not stretched by the VBox
    assert panel.status_text == "ready"
    assert panel.plot.format == "png" and bytes(panel.plot.value).startswith(PNG_SIGNATURE)
    assert panel.redraws == 0 and panel.losses == []
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_unlisted_batch_size_is_added_to_the_options():
    trainer = tiny_trainer()
    trainer.setBatchSize(50)
    panel = TrainingPanel(trainer)
    assert panel.batch_size.value == 50 and 50 in panel.batch_size.options


def test_train_applies_the_controls_and_redraws_the_plot():
    trainer = tiny_trainer()
    panel = TrainingPanel(trainer, plot_every=4)
    initial_png = bytes(panel.plot.value)
    panel.learning_rate.value = 0.05
    panel.batch_size.value = 16
    panel.epochs.value = 2
    panel.train()
    assert trainer.rate == pytest.approx(0.05)
    assert trainer.batchSize == 16
    assert len(panel.losses) == 2 * 4                     # 64 samples / 16 = 4 steps, 2 epochs
    assert panel.steps == list(range(1, 9))
    assert all(np.isfinite(panel.losses))
    assert bytes(panel.plot.value) != initial_png
    assert bytes(panel.plot.value).startswith(PNG_SIGNATURE)
    assert panel.redraws > 0
    assert panel.status_text.startswith("done: validation accuracy ")
    assert "(2 epochs, " in panel.status_text
    assert not panel.train_button.disabled
    assert trainer._callbacks["step"] == []               # the step callback was removed


def test_optimizer_is_reset_only_when_it_changes():
    trainer = tiny_trainer()
    panel = TrainingPanel(trainer)
    panel.train()
    first = trainer.optimizer
    panel.train()
    assert trainer.optimizer is first                     # same settings: state kept
    panel.optimizer.value = "adam"
    panel.learning_rate.value = 0.001
    panel.train()
    assert trainer._optimizer_name == "adam" and trainer.optimizer is not first
    assert trainer.optimizer.lr == pytest.approx(0.001)
    assert len(panel.losses) == 3
    assert panel.status_text.startswith("done")


def test_divergence_is_shown_in_red_and_does_not_raise():
    trainer = tiny_trainer()
    trainer.max_loss = 0.01                               # any real loss counts as divergence
    panel = TrainingPanel(trainer)
    panel.learning_rate.value = 1.0                       # the slider's maximum
    panel.train()                                         # must not raise or warn outside
    assert trainer.rate == 1.0
    assert trainer.diverged is not None
    assert "exploding numbers" in panel.status_text
    assert "color:" in panel.status.value
    assert not panel.train_button.disabled
    assert trainer._callbacks["step"] == []


def test_exceptions_are_shown_in_the_status_not_raised():
    trainer = tiny_trainer()
    trainer.X_train = None                                # "no data" RuntimeError
    panel = TrainingPanel(trainer)
    panel.train()
    assert panel.status_text.startswith("error: RuntimeError: no data")
    assert "color:" in panel.status.value
    assert not panel.train_button.disabled and not panel.training
    assert trainer._callbacks["step"] == [] and panel.runs == []


def test_button_click_trains():
    trainer = tiny_trainer()
    panel = TrainingPanel(trainer, plot_every=1)
    panel.train_button.click()
    assert len(panel.losses) == 1 and panel.redraws >= 1
    assert panel.status_text.startswith("done")


def test_bad_arguments_are_rejected():
    trainer = tiny_trainer()
    with pytest.raises(TypeError, match="MnistTraining"):
        TrainingPanel(object())
    with pytest.raises(ValueError, match="plot_every"):
        TrainingPanel(trainer, plot_every=0)
    with pytest.raises(ValueError, match="epochs"):
        TrainingPanel(trainer, epochs=11)
