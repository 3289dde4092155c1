"""Progress bars that read well both live in Jupyter and in an executed notebook.

In a live notebook a tqdm widget bar is best. In a notebook executed headlessly (papermill, the
kit's ``run-notebooks``) nothing renders widgets: the stored copy would show every bar frozen
at its first state ("0%| 0/12"). There the bars are tqdm's text bars, written to the cell's
stderr: a bar first shows after 30 s and then at most every 30 s, and always in its final
state when it closes, so a short loop leaves one finished line ("100%| 12/12") and a long one
a few. The runner marks headless kernels with ``$PROXIQA_LAB_HEADLESS=1``.

This module is low level on purpose: it imports nothing else from the kit.
"""

from __future__ import annotations

import os

#: Set to "1" in the environment of kernels that run without a live frontend.
HEADLESS_ENV = "PROXIQA_LAB_HEADLESS"


def headless() -> bool:
    """Whether this process runs a notebook with no live frontend (widgets do not render)."""
    return os.environ.get(HEADLESS_ENV) == "1"


def _text_bar():
    from tqdm.std import tqdm as text_bar

    class FinishedBar(text_bar):
        """tqdm's text bar that, closing before its first display (``delay``), still shows its final state."""

        def close(self):
            if not getattr(self, "disable", True) and hasattr(self, "last_print_t"):
                self.delay = min(self.delay, self.last_print_t - self.start_t)
            super().close()

    return FinishedBar


def tqdm(*args, **kwargs):
    """``tqdm.auto.tqdm`` live; a text bar (stderr, see the module docstring) when headless."""
    if headless():
        import sys

        kwargs.setdefault("file", sys.stderr)
        kwargs.setdefault("delay", 30.0)
        kwargs.setdefault("mininterval", 30.0)
        return _text_bar()(*args, **kwargs)
    from tqdm.auto import tqdm as auto_bar

    return auto_bar(*args, **kwargs)
