"""The version of stnlib."""
__version__ = "0.1.0"
