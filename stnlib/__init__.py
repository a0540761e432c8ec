"""stnlib: spatial transformer networks and rotation invariance.

The reference implementation of Finnveden, Jansson & Lindeberg, "Understanding
when spatial transformer networks do not support invariance, and what to do
about it" (ICPR 2020, arXiv:2004.11678).
"""
from .config import RunConfig
from .errors import StnlibError
from .version import __version__


def load_run(folder, run: int = 0, device: str = "cpu"):
    """Open a run folder written by ``python -m stnlib.learn``; see ``stnlib.runs.load_run``."""
    from .runs import load_run as _load_run

    return _load_run(folder, run=run, device=device)


__all__ = ["RunConfig", "StnlibError", "load_run", "__version__"]
