"""TensorRT engines: build (`engine_build`), run (`engine_runtime`), and the plain-Python parts around them.

Only `engine_build` and `engine_runtime` import TensorRT; import them after `require_tensorrt()`.
"""
