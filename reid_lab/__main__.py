"""``python -m reid_lab …`` (also what ``torchrun … -m reid_lab`` runs)."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
