"""Export of trained detectors to deployment formats (ONNX)."""
