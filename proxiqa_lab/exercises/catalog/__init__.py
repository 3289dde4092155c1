"""The exercises of each notebook: ``nbNN`` registers those of ``notebooks/NN_*.ipynb``."""

from proxiqa_lab.exercises.catalog import nb00, nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08  # noqa: F401
