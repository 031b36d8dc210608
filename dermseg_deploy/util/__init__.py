"""Layer 1: atomic file writes, graceful stop signals, devices, and the policy for missing extras."""
