"""Exporters: PyTorch checkpoint -> ONNX, with a parity check against PyTorch."""
