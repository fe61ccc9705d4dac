"""ssmar: semi-supervised micro-action recognition (APLT and SSL baselines)."""

__version__ = "0.1.0"
