"""Layer 5: the per-image core: decode policy, preprocessing, test-time augmentation, masks, and the stage objects
for the host (NumPy) and for CUDA (torch)."""
