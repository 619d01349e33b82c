"""Helper package for the interactive CNN course."""
__version__ = "0.1.0"
