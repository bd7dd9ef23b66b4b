"""The package layout (issue 13): figures in reid_lab.viz, retrieval math in reid_lab.retrieval, the tutorial harness
in reid_lab.tutorial; the old import paths are aliases (for one release) of the very same objects."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import warnings

import pytest

import reid_lab

# old module -> new module: every public function, class and constant of the new module is reachable, unchanged
MOVED = {
    "reid_lab.evaluation": "reid_lab.retrieval.evaluation",
    "reid_lab.reranking": "reid_lab.retrieval.reranking",
    "reid_lab.kreciprocal": "reid_lab.retrieval.kreciprocal",
    "reid_lab.neighbors": "reid_lab.retrieval.neighbors",
    "reid_lab.clustering": "reid_lab.retrieval.clustering",
    "reid_lab.diagnostics": "reid_lab.retrieval.diagnostics",
    "reid_lab.notebook": "reid_lab.tutorial.notebook",
    "reid_lab.zoo": "reid_lab.tutorial.zoo",
    "reid_lab.data.profile": "reid_lab.tutorial.profile",
    "reid_lab.reid.plots": "reid_lab.viz.finetune",
    "reid_lab.usl_plots": "reid_lab.viz.usl",
}
# single names whose old path is another module than their new one: (old module, name, new module)
MOVED_NAMES = [
    ("reid_lab.usl_plots", "cluster_purity", "reid_lab.retrieval.clustering"),
    ("reid_lab.usl_plots", "eps_sweep", "reid_lab.retrieval.clustering"),
    ("reid_lab.cfs", "plot_score_histogram", "reid_lab.viz.cfs"),
    ("reid_lab.cfs", "plot_image_grid", "reid_lab.viz.cfs"),
    ("reid_lab.ssl.monitor", "plot_training_curves", "reid_lab.viz.dino"),
    ("reid_lab.ssl", "plot_training_curves", "reid_lab.viz.dino"),
    ("reid_lab.ssl.multicrop", "plot_crops", "reid_lab.viz.dino"),
    ("reid_lab.ssl", "plot_crops", "reid_lab.viz.dino"),
    ("reid_lab.reranking", "_expanded_distances", "reid_lab.retrieval.reranking"),  # tests and benchmarks use it
]
# the old __all__ lists (before the move), each name still importable from the old path
OLD_ALL = {
    "reid_lab.evaluation": None,  # None: the new module's __all__
    "reid_lab.zoo": None,
    "reid_lab.reid.plots": None,
    "reid_lab.usl_plots": ["cluster_purity", "eps_sweep", "plot_eps_sweep", "plot_kreciprocal", "plot_tsne",
                           "plot_uda_results", "plot_usl_history"],
    "reid_lab.cfs": ["plot_image_grid", "plot_score_histogram"],
    "reid_lab.ssl.monitor": ["plot_training_curves"],
    "reid_lab.ssl.multicrop": ["plot_crops"],
    "reid_lab.ssl": ["plot_crops", "plot_training_curves"],
}


def _defined(module) -> dict[str, object]:
    """The public functions and classes a module defines itself, and its public module-level constants."""
    names = {}
    for name, obj in vars(module).items():
        if name.startswith("_") or inspect.ismodule(obj):
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            if obj.__module__ == module.__name__:
                names[name] = obj
        elif name.isupper():
            names[name] = obj
    return names


def _all_modules() -> list[str]:
    found = ["reid_lab"]
    for info in pkgutil.walk_packages(reid_lab.__path__, "reid_lab."):
        found.append(info.name)
    return sorted(found)


@pytest.mark.parametrize("old, new", sorted(MOVED.items()))
def test_old_module_path_resolves_to_the_same_objects(old, new):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # aliases stay silent: notebook outputs must be clean
        old_module = importlib.import_module(old)
    new_module = importlib.import_module(new)
    assert old_module is not new_module
    defined = _defined(new_module)
    assert defined, f"{new} defines nothing public?"
    for name, obj in defined.items():
        assert getattr(old_module, name) is obj, f"{old}.{name} is not {new}.{name}"
    assert "moved to" in (old_module.__doc__ or "").lower() and "next release" in old_module.__doc__


@pytest.mark.parametrize("old, name, new", MOVED_NAMES, ids=lambda v: v if isinstance(v, str) else None)
def test_moved_name_resolves_to_the_same_object(old, name, new):
    new_obj = getattr(importlib.import_module(new), name)
    assert getattr(importlib.import_module(old), name) is new_obj
    namespace: dict = {}
    exec(f"from {old} import {name}", namespace)  # the from-import form too (module __getattr__ aliases)
    assert namespace[name] is new_obj


@pytest.mark.parametrize("old", sorted(OLD_ALL))
def test_old_all_lists_still_import(old):
    module = importlib.import_module(old)
    names = OLD_ALL[old] or importlib.import_module(MOVED[old]).__all__
    assert set(names) <= set(module.__all__)
    namespace: dict = {}
    exec(f"from {old} import *", namespace)
    assert set(names) <= set(namespace)


def test_new_subpackages_are_packages_and_found_by_setuptools():
    from setuptools import find_packages

    packages = set(find_packages(str(reid_lab.__path__[0] + "/.."), include=["reid_lab*"]))
    assert {"reid_lab.retrieval", "reid_lab.tutorial", "reid_lab.viz"} <= packages


def test_every_figure_function_lives_under_viz():
    """A function that draws (matplotlib, or the shared _figure/_save) is defined in reid_lab.viz; every ``plot_*``
    name anywhere in the package is a reid_lab.viz function."""
    draws = re.compile(r"\b(matplotlib|pyplot|plt\.|_figure\(|_save\()")
    outside, misplaced = [], []
    for name in _all_modules():
        if name == "reid_lab.__main__":
            continue
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if not inspect.isfunction(obj):
                continue
            home = obj.__module__ or ""
            if attr.startswith("plot_") and not home.startswith("reid_lab.viz."):
                misplaced.append(f"{name}.{attr} (defined in {home})")
            if home == name and not name.startswith("reid_lab.viz") and draws.search(inspect.getsource(obj)):
                outside.append(f"{name}.{attr}")
    assert not outside, f"figure functions outside reid_lab.viz: {outside}"
    assert not misplaced, f"plot_* names that are not reid_lab.viz functions: {misplaced}"
    for alias in ("plot_crops", "plot_training_curves"):  # module __getattr__ aliases are not in vars()
        assert getattr(importlib.import_module("reid_lab.ssl"), alias).__module__ == "reid_lab.viz.dino"


def test_course_and_cli_use_the_tutorial_subpackage():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "reid_lab.course", "--help"], capture_output=True, text=True,
                         check=True)
    assert "--stage" in out.stdout
    from reid_lab import course

    assert course.zoo is importlib.import_module("reid_lab.tutorial.zoo")
