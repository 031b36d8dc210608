"""Sample images shipped with dermseg (ISIC 2017, CC0; see README.md here)."""

from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent
SAMPLE_IMAGES_DIR = SAMPLES_DIR / "images"


def sample_image_paths() -> list[Path]:
    return sorted(SAMPLE_IMAGES_DIR.glob("*.jpg"))
