"""Beyond one machine, on existing engines: batch segmentation on Ray Data (`dermseg-run --ray`), online serving
on Ray Serve (`dermseg-serve`), and a Triton Inference Server model repository (`dermseg-export --triton-repo`).

Each calls the per-image core (`Segmenter`); none has decode, preprocess or postprocess code of its own. Ray is
imported only when used (`pip install 'dermseg[ray]'`).
"""
