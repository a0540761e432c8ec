"""The explorer: rotate an input with a slider and watch the STN respond.

``ExplorerState`` computes what is shown (plain tensors, testable without a browser);
``ExplorerFigure`` draws it into one reused matplotlib figure; ``Explorer`` wires both to
ipywidgets controls for JupyterLab.
"""
from .figure import ExplorerFigure
from .runs import builtin_config, find_runs, search_roots, train_builtin
from .state import ExplorerState, View
from .angles import plot_views_at_angles, redraw_milliseconds, views_at_angles


def __getattr__(name):  # ipywidgets is imported only when the widget is asked for
    if name == "Explorer":
        from .widget import Explorer
        return Explorer
    raise AttributeError(name)


__all__ = ["Explorer", "ExplorerFigure", "ExplorerState", "View", "builtin_config", "find_runs", "search_roots",
           "train_builtin", "plot_views_at_angles", "redraw_milliseconds", "views_at_angles"]
