"""The model zoo: trained lab runs shipped with the kit, each file checked against its sha256 before use.

==========================  =========================================================
module                      what it does
==========================  =========================================================
:mod:`~.registry`           ``registry.json``: the shipped runs, :func:`verify`, :func:`shipped_run`
:mod:`~.archive`            :func:`export_runs`, :func:`ship`
:mod:`~.importing`          :func:`import_archive`: an archive from someone else, checked as untrusted input
:mod:`~.plan`               the runs each notebook needs, trained two side by side
==========================  =========================================================
"""

from proxiqa_lab.zoo.archive import export_runs, ship, trained_runs
from proxiqa_lab.zoo.importing import import_archive
from proxiqa_lab.zoo.registry import ZooModel, find_model, load_registry, shipped_run, verify, zoo_root

__all__ = ["ZooModel", "export_runs", "find_model", "import_archive", "load_registry", "ship", "shipped_run",
           "trained_runs", "verify", "zoo_root"]
