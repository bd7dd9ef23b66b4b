"""The tutorial harness: what the notebooks share, where they find their inputs, and the headless run.

* :mod:`.notebook` — a notebook's :class:`~.notebook.Session` (:func:`~.notebook.start`), its ``metrics.json``
  (:func:`~.notebook.save_metrics`), and ``reid-lab tutorial`` (:func:`~.notebook.run_tutorial`: papermill runs,
  results table, README block);
* :mod:`.profile` — the datasets of a profile (:func:`~.profile.load_profile_data`: synthetic worlds or real data);
* :mod:`.zoo` — the shipped course checkpoints and the backbones downstream notebooks start from;
* :mod:`.exercises` — every config a notebook trains with, built once from its parameters cell (``SEED`` and the
  "Try next" knobs), and whether a shipped or finished run is the one asked for;
* :mod:`.site` — ``reid-lab site`` (``make site``): the executed notebooks as a static HTML site.

What a notebook's first cell needs is importable from here (no torch)::

    from reid_lab.tutorial import load_profile_data, save_metrics, start, zoo

``reid_lab.notebook``, ``reid_lab.zoo`` and ``reid_lab.data.profile`` are aliases for one release.
"""
from .notebook import Session, load_metrics, save_metrics, start
from .profile import ProfileData, load_profile_data

__all__ = ["ProfileData", "Session", "load_metrics", "load_profile_data", "save_metrics", "start"]
