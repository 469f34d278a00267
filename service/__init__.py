"""relu-serve: a REST service for ReLU networks and activation functions."""

__version__ = "0.1.0"
