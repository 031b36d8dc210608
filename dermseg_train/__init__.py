"""dermseg training: the ResNet34-UNet, data, metrics and the training loop."""

from dermseg_deploy.version import __version__

__all__ = ["__version__"]
