"""Build-time pipeline: train the ReLU CNN with PyTorch and export it to ONNX for the service."""
