"""The /predict feature without HTTP: the ONNX Runtime model, preprocessing, batching, predictions."""
