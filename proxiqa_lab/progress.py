"""Progress bars that read well both live in Jupyter and in an executed notebook.

In a live notebook a tqdm widget bar is best. In a notebook executed headlessly (papermill, the
kit's ``run-notebooks``) nothing renders widgets: the stored copy would show every bar frozen
at its first state ("0%| 0/12"). There the bars are tqdm's text bars, written to the cell's
stderr, which viewers and ``nbconvert`` show at their final state. The runner marks headless
kernels with ``$PROXIQA_LAB_HEADLESS=1``.

This module is low level on purpose: it imports nothing else from the kit.
"""

from __future__ import annotations

import os

#: Set to "1" in the environment of kernels that run without a live frontend.
HEADLESS_ENV = "PROXIQA_LAB_HEADLESS"


def headless() -> bool:
    """Whether this process runs a notebook with no live frontend (widgets do not render)."""
    return os.environ.get(HEADLESS_ENV) == "1"


def tqdm(*args, **kwargs):
    """``tqdm.auto.tqdm`` live; a text bar (stderr, refreshed at most every 2 s) when headless."""
    if headless():
        import sys

        from tqdm.std import tqdm as text_bar

        kwargs.setdefault("file", sys.stderr)
        kwargs.setdefault("mininterval", 2.0)
        return text_bar(*args, **kwargs)
    from tqdm.auto import tqdm as auto_bar

    return auto_bar(*args, **kwargs)
