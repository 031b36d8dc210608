"""Layer 7: the Segmenter (the Python API) and the pipeline that runs the stages over many images."""
