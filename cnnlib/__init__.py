"""cnnlib: a convolutional neural network from scratch in NumPy, for learning.

The core (layers, loss, optimisers, model) needs NumPy only. ``MnistTraining``
keeps the original project's API working word for word::

    from cnnlib import MnistTraining, layer
"""
from .factory import layer
from .gradcheck import check_layer, numerical_gradient, rel_error
from .layers import (AvgPool2D, Conv2D, Dense, Flatten, Layer, MaxPool2D, ReLU, Sigmoid,
                     Softmax, Tanh)
from .losses import softmax_cross_entropy
from .model import Sequential
from .optim import SGD, Adam, Momentum, get_optimizer

__version__ = "0.1.0"

__all__ = ["layer", "MnistTraining", "Sequential", "Layer", "Conv2D", "Dense", "Flatten",
           "MaxPool2D", "AvgPool2D", "ReLU", "Tanh", "Sigmoid", "Softmax",
           "softmax_cross_entropy", "SGD", "Momentum", "Adam", "get_optimizer",
           "check_layer", "numerical_gradient", "rel_error", "load_mnist"]


def __getattr__(name):
    # Imported on first use so that `import cnnlib` stays light.
    if name == "MnistTraining":
        from .training import MnistTraining
        return MnistTraining
    if name == "load_mnist":
        from .data import load_mnist
        return load_mnist
    raise AttributeError(f"module 'cnnlib' has no attribute {name!r}")
