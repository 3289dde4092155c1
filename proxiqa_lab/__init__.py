"""ProxIQA Lab: proxy-based perceptual optimization of learned image compression.

Implements and extends Chen, Bampis, Li, Norkin and Bovik, "ProxIQA: A Proxy Approach
to Perceptual Optimization of Learned Image Compression", IEEE TIP 30, 2021.

The package is layered, each layer importing only those below it::

    data -> metrics -> models -> losses -> codec / classical -> evaluation
         -> training -> plots / widgets -> notebooks runner -> cli
"""

__version__ = "0.1.0"

import warnings as _warnings

# CompressAI scripts a few functions with torch.jit.script at import time, which torch 2.10+
# flags as deprecated. Nothing a user of the kit can act on, so it is not shown.
_warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
