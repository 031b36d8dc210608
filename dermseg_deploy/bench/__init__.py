"""`dermseg-bench`: per-stage latencies, inference-only and end-to-end rates, and mask agreement."""
