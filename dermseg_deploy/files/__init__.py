"""Layer 6: files in and out: input discovery, mask and overlay files, the manifest."""
