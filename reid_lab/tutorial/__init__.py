"""The tutorial harness: what the notebooks share, where they find their inputs, and the headless run.

* :mod:`.notebook` — a notebook's :class:`~.notebook.Session` (:func:`~.notebook.start`), its ``metrics.json``
  (:func:`~.notebook.save_metrics`), and ``reid-lab tutorial`` (:func:`~.notebook.run_tutorial`: papermill runs,
  results table, README block);
* :mod:`.profile` — the datasets of a profile (:func:`~.profile.load_profile_data`: synthetic worlds or real data);
* :mod:`.zoo` — the shipped course checkpoints and the backbones downstream notebooks start from.

Importing this package is cheap; import the module you need. ``reid_lab.notebook``, ``reid_lab.zoo`` and
``reid_lab.data.profile`` are aliases for one release.
"""
