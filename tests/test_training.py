"""MnistTraining: the original API, training loop guarantees, divergence guard,
interrupts, save/load and the command line."""
import os
import warnings

import numpy as np
import pytest

from cnnlib import MnistTraining, layer
from cnnlib.training import TrainingDivergedWarning

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist.npz")


def _fake_data(trainer, n_train=250, n_val=60, seed=0):
    """Synthetic, learnable data: the label is written as a bright square position."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n_train + n_val)
    x = rng.random((n_train + n_val, 28, 28, 1), dtype=np.float32) * 0.1
    for k, label in enumerate(y):
        x[k, 2 * label:2 * label + 4, 4:10, 0] += 1.0
    trainer.X_train, trainer.Y_train = x[:n_train], y[:n_train]
    trainer.X_test, trainer.Y_test = x[n_train:], y[n_train:]
    return trainer


def _original_model(trainer):
    trainer.add(layer("conv", (3, 3, 1, 8), (28, 28, 1), "relu", "same"))
    trainer.add(layer("avgPool"))
    trainer.add(layer("flatten", 14 * 14 * 8, (14, 14, 8)))
    trainer.add(layer("dense", 128, 14 * 14 * 8, "relu"))
    trainer.add(layer("dense", 10, 128, "softmax"))
    return trainer


def _weights(trainer):
    return [p.copy() for l in trainer.layers for p in l.params.values()]


@pytest.fixture
def mnist_env(monkeypatch, tmp_path):
    """Real MNIST from the shared copy when present, else the offline fallback."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    if os.path.exists(SHARED):
        monkeypatch.setenv("CNNLIB_MNIST", os.path.abspath(SHARED))
    else:
        monkeypatch.delenv("CNNLIB_MNIST", raising=False)
        import urllib.error
        import urllib.request

        def offline(*args, **kwargs):
            raise urllib.error.URLError("network disabled in tests")
        monkeypatch.setattr(urllib.request, "urlopen", offline)


def test_original_readme_usage_as_written(mnist_env, capsys):
    # The original README's workflow, typed in as written.
    model_name = MnistTraining()
    model_name.loadDataFromKeras(1000, 200)
    model_name.setBacthSize(100)
    model_name.setLearningRate(0.01)
    model_name.add(layer("conv", (3, 3, 1, 8), (28, 28, 1), "relu", "same"))
    model_name.add(layer("avgPool"))
    model_name.add(layer("conv", (3, 3, 8, 16), (14, 14, 8), "relu", "same"))
    model_name.add(layer("maxPool"))
    model_name.add(layer("flatten", (784, 100), (100, 7, 7, 16)))
    model_name.add(layer("dense", 128, 784, "relu"))
    model_name.add(layer("dense", 10, 128, "softmax"))
    model_name.trainingMnist(3)
    probs, accuracy = model_name.testing()
    out = capsys.readouterr().out
    assert out.count("[Epoch]") == 3 and "Validation accuracy" in out
    assert probs.shape == (200, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    assert model_name.loss[-1] < model_name.loss[0] - 0.3       # it learns
    assert accuracy > 0.5                                        # far above chance (0.1)
    assert len(model_name.acu) == len(model_name.loss_t) == len(model_name.acu_t) == 3


def test_defaults_and_aliases():
    t = MnistTraining()
    assert (t.batchSize, t.rate) == (100, 0.01)
    t.setBatchSize(32)
    assert t.batchSize == 32
    t.setBacthSize(64)
    assert t.batchSize == 64


def test_instances_share_nothing():
    a, b = MnistTraining(), MnistTraining()
    _original_model(a)
    assert len(a.layers) == 5 and len(b.layers) == 0
    a.history["loss"].append(1.0)
    assert b.loss == [] and a.loss == [1.0]


def test_add_checks_shapes_with_layer_index():
    t = MnistTraining()
    t.add(layer("conv", (3, 3, 1, 8), (28, 28, 1), "relu", "same"))
    t.add(layer("avgPool"))
    with pytest.raises(ValueError, match=r"layer 2 .*\(13, 13, 8\).*layer 1 .*\(14, 14, 8\)"):
        t.add(layer("flatten", 13 * 13 * 8, (13, 13, 8)))


def test_last_layer_must_be_ten_way_softmax():
    t = _fake_data(MnistTraining())
    t.add(layer("conv", (3, 3, 1, 8), (28, 28, 1), "relu", "same"))
    t.add(layer("avgPool"))
    t.add(layer("flatten", 1568, (14, 14, 8)))
    t.add(layer("dense", 10, 1568, "relu"))
    with pytest.raises(ValueError, match="10-unit softmax"):
        t.trainingMnist(1)
    u = _fake_data(MnistTraining())
    u.add(layer("flatten", 784, (28, 28, 1)))
    u.add(layer("dense", 5, 784, "softmax"))
    with pytest.raises(ValueError, match="10 units"):
        u.trainingMnist(1)


def test_every_sample_once_per_epoch_including_partial_batch():
    t = _original_model(_fake_data(MnistTraining(seed=1, verbose=False), n_train=250))
    t.X_train[:, 0, 0, 0] = np.arange(250)          # tag each image with its index
    seen, sizes = [], []
    original = t.model.compute_gradients

    def spy(x, y):
        seen.extend(x[:, 0, 0, 0].astype(int).tolist())
        sizes.append(len(x))
        return original(x, y)

    t.model.compute_gradients = spy
    t.trainingMnist(2)
    assert sizes == [100, 100, 50] * 2
    assert sorted(seen[:250]) == list(range(250)) and sorted(seen[250:]) == list(range(250))
    assert seen[:250] != seen[250:]                  # reshuffled between epochs
    assert len(t.step_history["loss"]) == 6


def test_divergence_guard_stops_cleanly_and_keeps_finite_weights():
    t = _original_model(_fake_data(MnistTraining(seed=0, verbose=False)))
    t.setLearningRate(100)
    seen = [_weights(t)]                               # weights before step 1, 2, ...
    t.addCallback(lambda tr, info: seen.append(_weights(tr)), when="step")
    with pytest.warns(TrainingDivergedWarning, match=r"epoch 1, step \d+.*lower learning rate"):
        t.trainingMnist(3)
    assert t.diverged is not None and t.diverged["epoch"] == 1
    weights = _weights(t)
    assert all(np.isfinite(w).all() for w in weights)
    # Step k's recorded loss was measured at the weights seen before step k. The
    # step that exploded ran at seen[-1]; the restored weights are the ones
    # before it, the last at which the loss was finite.
    steps_done = t.diverged["step"] - 1
    assert len(t.step_history["loss"]) == steps_done == len(seen) - 1
    expected = seen[-2] if steps_done else seen[0]
    assert all(np.array_equal(a, b) for a, b in zip(weights, expected))
    assert np.isfinite(t.step_history["loss"]).all()
    assert len(t.loss) == 0                           # no epoch completed
    # Training can go on after lowering the rate.
    t.setLearningRate(0.01)
    t.trainingMnist(1)
    assert len(t.loss) == 1 and np.isfinite(t.loss[0])


def test_nan_gradient_is_caught(monkeypatch):
    t = _original_model(_fake_data(MnistTraining(seed=0, verbose=False)))
    good = _weights(t)
    original = t.model.compute_gradients

    def poisoned(x, y):
        loss, probs = original(x, y)
        t.layers[0].grads["W"][0, 0, 0, 0] = np.nan
        return loss, probs

    t.model.compute_gradients = poisoned
    with pytest.warns(TrainingDivergedWarning, match="gradient of Conv2D"):
        t.trainingMnist(1)
    assert all(np.array_equal(a, b) for a, b in zip(_weights(t), good))


def test_keyboard_interrupt_keeps_completed_steps():
    t = _original_model(_fake_data(MnistTraining(seed=0, verbose=False), n_train=1000))
    t.trainingMnist(1)                                 # one full epoch first

    def interrupt(tr, info):
        if info["step"] == 4:
            raise KeyboardInterrupt

    t.addCallback(interrupt, when="step")
    t.trainingMnist(2)
    assert len(t.loss) == 1                            # the interrupted epoch is not counted
    assert len(t.step_history["loss"]) == 10 + 4
    assert {len(v) for v in t.step_history.values()} == {14}
    assert all(np.isfinite(w).all() for w in _weights(t))


def test_interrupt_inside_an_update_restores_consistent_weights():
    t = _original_model(_fake_data(MnistTraining(seed=0, verbose=False)))
    t.trainingMnist(1)
    weights = _weights(t)
    optimizer = t.optimizer
    real_step = optimizer.step

    def half_step(layers):
        layers[0].params["W"] += 1.0                   # a partial update...
        raise KeyboardInterrupt                        # ...cut short

    optimizer.step = half_step
    t.trainingMnist(1)
    assert all(np.array_equal(a, b) for a, b in zip(_weights(t), weights))
    assert len(t.step_history["loss"]) == 3
    optimizer.step = real_step


def test_seed_makes_runs_reproducible():
    runs = []
    for _ in range(2):
        t = _original_model(_fake_data(MnistTraining(seed=3, verbose=False)))
        t.setOptimizer("momentum", momentum=0.9)
        t.trainingMnist(1)
        runs.append(t.step_history["loss"])
    assert runs[0] == runs[1]
    other = _original_model(_fake_data(MnistTraining(seed=4, verbose=False)))
    other.setOptimizer("momentum", momentum=0.9)
    other.trainingMnist(1)
    assert other.step_history["loss"] != runs[0]


def test_optimizers_learn_and_lr_is_validated():
    for name, lr in (("sgd", 0.05), ("momentum", 0.02), ("adam", 0.002)):
        t = _original_model(_fake_data(MnistTraining(seed=0, verbose=False), n_train=500))
        t.setOptimizer(name, lr=lr)
        t.trainingMnist(3)
        assert t.acu_t[-1] > 0.6, (name, t.acu_t)
    with pytest.raises(ValueError, match="learning_rate"):
        MnistTraining().setLearningRate(-1)
    with pytest.raises(ValueError, match="optimizer"):
        MnistTraining().setOptimizer("rmsprop")


def test_callbacks_receive_step_and_epoch_info():
    t = _original_model(_fake_data(MnistTraining(seed=0, verbose=False)))
    steps, epochs = [], []
    t.addCallback(lambda tr, info: steps.append(info), when="step")
    t.addCallback(lambda tr, info: epochs.append(info), when="epoch")
    t.trainingMnist(2)
    assert [s["global_step"] for s in steps] == list(range(1, 7))
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert epochs[-1]["acu_t"] == t.acu_t[-1]
    t.stop_training = False
    t.addCallback(lambda tr, info: setattr(tr, "stop_training", True), when="step")
    t.trainingMnist(1)
    assert len(t.step_history["loss"]) == 7


def test_testing_show_info(capsys):
    t = _original_model(_fake_data(MnistTraining(seed=0, verbose=False)))
    t.trainingMnist(1)
    probs, acc = t.testing(showInfo=True)
    out = capsys.readouterr().out
    assert "Accuracy:" in out and "Tests failed:" in out
    wrong = np.flatnonzero(probs.argmax(1) != t.Y_test)
    assert acc == pytest.approx(1 - len(wrong) / len(t.Y_test))


def test_save_and_load_round_trip(tmp_path):
    t = _original_model(_fake_data(MnistTraining(seed=0, verbose=False)))
    t.setOptimizer("adam", lr=0.001)
    t.trainingMnist(1)
    path = t.save(tmp_path / "trained")
    u = MnistTraining.load(path, verbose=False)
    _fake_data(u)
    np.testing.assert_array_equal(u.model.predict(u.X_test), t.model.predict(t.X_test))
    assert u.loss == t.loss and u.rate == t.rate and u._optimizer_name == "adam"
    assert (u.input_mean, u.input_std) == (t.input_mean, t.input_std)
    assert os.listdir(tmp_path) == ["trained.npz"]


def test_no_data_or_layers_give_clear_errors():
    with pytest.raises(RuntimeError, match="loadDataFromKeras"):
        _original_model(MnistTraining()).trainingMnist(1)
    with pytest.raises(RuntimeError, match="add"):
        _fake_data(MnistTraining()).trainingMnist(1)
    with pytest.raises(ValueError, match="epochs"):
        _original_model(_fake_data(MnistTraining())).trainingMnist(0)


def test_command_line_runs(mnist_env, capsys):
    from cnnlib.__main__ import main
    assert main(["--train", "300", "--val", "100", "--epochs", "1", "--optimizer", "adam"]) == 0
    out = capsys.readouterr()
    assert "test accuracy:" in out.out and "epoch 1/1 [" in out.err


def test_command_line_reports_bad_sizes_without_traceback(mnist_env, capsys):
    from cnnlib.__main__ import main
    assert main(["--train", "1000000", "--epochs", "1"]) == 2
    assert "error:" in capsys.readouterr().err
