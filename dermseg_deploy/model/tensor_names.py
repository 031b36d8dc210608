"""Tensor names shared by the exporter, the backends and the tests."""

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
