"""Running and checking the kit's notebooks.

- :mod:`proxiqa_lab.notebooks.runner` executes the numbered notebooks in order through
  papermill and writes an index of the figures and tables they produced
  (``proxiqa-lab run-notebooks``);
- :mod:`proxiqa_lab.notebooks.hygiene` checks that committed notebooks are clean
  (``python -m proxiqa_lab.notebooks.hygiene [--fix] notebooks/``).
"""
