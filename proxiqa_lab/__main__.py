"""``python -m proxiqa_lab`` is the ``proxiqa-lab`` command."""

from proxiqa_lab.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
