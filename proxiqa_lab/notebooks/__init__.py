"""Running and checking the kit's notebooks.

``runner`` executes the numbered notebooks in order through papermill and writes an index of
what they produced; ``hygiene`` checks that the committed notebooks are clean.
"""

from proxiqa_lab.notebooks.hygiene import check_notebook, clean_notebook
from proxiqa_lab.notebooks.runner import NotebookFailure, NotebookResult, discover_notebooks, run_suite

__all__ = [
    "NotebookFailure",
    "NotebookResult",
    "check_notebook",
    "clean_notebook",
    "discover_notebooks",
    "run_suite",
]
