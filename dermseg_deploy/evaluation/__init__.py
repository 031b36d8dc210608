"""Layer 8: ISIC scoring: image/mask pairs, per-image scores, the validation split's halves."""
