"""Layers, one module per family. All follow the contract in ``base.py``."""
from .activations import ReLU, Sigmoid, Softmax, Tanh, make_activation, sigmoid, softmax
from .base import ActivatedLayer, Layer
from .conv import Conv2D, conv2d_backward_naive, conv2d_forward_naive
from .dense import Dense
from .flatten import Flatten
from .pooling import AvgPool2D, MaxPool2D

__all__ = ["Layer", "ActivatedLayer", "Conv2D", "Dense", "Flatten", "MaxPool2D", "AvgPool2D",
           "ReLU", "Tanh", "Sigmoid", "Softmax", "make_activation", "sigmoid", "softmax",
           "conv2d_forward_naive", "conv2d_backward_naive"]
