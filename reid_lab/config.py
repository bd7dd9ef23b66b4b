"""Configuration: one frozen dataclass per stage, three profiles, and :func:`resolve`.

* ``full``  — the paper's settings on real data (values from docs/reference.md, section cited per field);
* ``tiny``  — a laptop CPU in minutes on the synthetic worlds;
* ``smoke`` — seconds, for CI: every code path runs, nothing is expected to learn.

The dataclass defaults *are* the ``full`` profile; ``tiny`` and ``smoke`` list only what they change.
``resolve(stage, profile, **overrides)`` returns the frozen config and fails loudly on unknown keys.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

PROFILES = ("smoke", "tiny", "full")


class ConfigError(ValueError):
    """A config value has the wrong type or lies outside its range (the message names field, value and expectation)."""


class UnknownConfigKeyError(ConfigError, KeyError):
    """An override names no field of the stage's config (a ``KeyError`` too, as before)."""


@dataclass(frozen=True)
class DataConfig:
    """Datasets and the synthetic worlds (docs/reference.md §4.3, §7)."""

    synthetic: bool = False  # full: real data under data_root; tiny/smoke: generated worlds
    market_dir: str = "market1501"  # relative to the data root (docs/reference.md §7.1)
    msmt_dir: str = "MSMT17"  # docs/reference.md §7.2 (V1 release renamed)
    luperson_dir: str = "LUP"  # docs/reference.md §2.8: LUP/images/<key>.jpg + CFS_list.pkl
    height: int = 256  # docs/reference.md §4.5 SIZE_TRAIN
    width: int = 128
    # synthetic world sizes (ignored when synthetic=False); images are stored at synth_height x synth_width
    synth_height: int = 128
    synth_width: int = 64
    synth_seed: int = 0
    market_train_ids: int = 751  # docs/reference.md §7.1
    market_test_ids: int = 750
    market_cameras: int = 6
    msmt_train_ids: int = 1041  # docs/reference.md §7.2
    msmt_test_ids: int = 3060
    msmt_cameras: int = 15
    images_per_id: int = 17  # ~12,936 / 751
    pool_size: int = 60_000  # SynthLUP images
    pool_off_domain: float = 0.25  # fraction of off-domain images (background patches, vehicles, clutter)
    num_workers: int = 8  # docs/reference.md §4.5 NUM_WORKERS


@dataclass(frozen=True)
class PretrainConfig:
    """DINO pre-training (docs/reference.md §2.4–2.7)."""

    arch: str = "vit_small_ics"
    epochs: int = 100
    batch_size: int = 512  # global: 64 per GPU x 8 GPUs
    base_lr: float = 0.0005  # scaled by batch/256 -> 0.001
    min_lr: float = 1e-6
    warmup_epochs: int = 10
    weight_decay: float = 0.04
    weight_decay_end: float = 0.4
    momentum_teacher: float = 0.996
    clip_grad: float = 3.0  # per parameter tensor (docs/reference.md §9.13)
    freeze_last_layer: int = 1
    out_dim: int = 65_536
    head_hidden_dim: int = 2048
    head_bottleneck_dim: int = 256
    norm_last_layer: bool = True
    teacher_temp: float = 0.04
    warmup_teacher_temp: float = 0.04
    warmup_teacher_temp_epochs: int = 0
    student_temp: float = 0.1
    center_momentum: float = 0.9
    drop_path_rate: float = 0.1
    global_size: tuple[int, int] = (256, 128)
    local_size: tuple[int, int] = (128, 64)
    local_crops_number: int = 8
    global_crops_scale: tuple[float, float] = (0.4, 1.0)
    local_crops_scale: tuple[float, float] = (0.05, 0.4)
    jitter_strength: float = 1.0  # scales DINO's colour jitter (docs/reference.md §2.5); <1 = milder
    grayscale_p: float = 0.2  # RandomGrayscale probability of every view (official DINO)
    blur_radius: tuple[float, float] = (0.1, 2.0)  # Gaussian blur radius in pixels (official DINO, at 224-256 px)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # RandomResizedCrop width/height range (official: torchvision's)
    augment: str = "pil"  # "pil": the official per-crop PIL pipeline; "batched": kornia on whole batches (faster)
    keep_ratio: float | None = 0.6  # CFS keep (docs/reference.md §1.4); None = whole pool
    keep_num: int | None = None  # keep this many head entries of the CFS list instead (official --keep_num)
    seed: int = 0


@dataclass(frozen=True)
class SupervisedConfig:
    """TransReID fine-tuning (docs/reference.md §4)."""

    arch: str = "vit_small_ics"
    dataset: str = "market1501"
    height: int = 256
    width: int = 128
    epochs: int = 120
    batch_size: int = 64
    num_instances: int = 4
    base_lr: float = 0.0004
    bias_lr_factor: float = 2.0
    weight_decay: float = 1e-4
    weight_decay_bias: float = 1e-4
    momentum: float = 0.9
    warmup_epochs: int = 20
    warmup_lr_factor: float = 0.01
    min_lr_factor: float = 0.002
    drop_path_rate: float = 0.1
    label_smoothing: float = 0.0
    triplet_margin: float | None = None  # None = soft margin (NO_MARGIN: True)
    eval_period: int = 120
    rerank: bool = False
    official_schedule: bool = False  # reproduce the official per-epoch lr off-by-one (docs/reference.md §9.8)
    seed: int = 1234


@dataclass(frozen=True)
class USLConfig:
    """Cluster-contrast unsupervised ReID (docs/reference.md §5)."""

    arch: str = "vit_small"
    dataset: str = "market1501"
    height: int = 256
    width: int = 128
    epochs: int = 50
    iters: int = 200
    batch_size: int = 256
    num_instances: int = 8
    optimizer: str = "SGD"  # docs/reference.md §5.4 default --optimizer; "Adam" / "AdamW" as the official options
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    momentum: float = 0.9  # SGD momentum
    step_size: int = 20  # StepLR(step_size, gamma 0.1), stepped after every epoch
    eps: float = 0.6  # 0.7 for MSMT-style data
    min_samples: int = 4
    k1: int = 30
    k2: int = 6
    memory_momentum: float = 0.2
    temperature: float = 0.05
    drop_path_rate: float = 0.3
    bn_chunks: int = 4  # ghost BN: 4-GPU DataParallel -> 64-image BN chunks (docs/reference.md §5.1; MSMT scripts: 2 GPUs -> 2)
    eval_step: int = 10
    seed: int = 1
    # Which forward the cluster memory's centroids come from, at every clustering (reid_lab.usl.train,
    # docs/reference.md "Cluster memory coordinates"). "train" (ours, default): the training forward — train mode
    # (batch-statistics BN in the ICS stem and the neck, drop path), the USL train transform, no gradient — i.e. the
    # coordinates of the features the memory is trained against. "eval": the official code's eval-mode clustering
    # features; through a fresh BN neck (running statistics 0 / 1) those share one direction (mean cosine 0.999)
    # while the same image's training feature is nearly orthogonal to them, and the first epoch's loss starts at
    # 11.6 with *true* labels (ln C = 5.0) and breaks a good start (issue 22: 41 -> 28 % mAP, oracle labels).
    memory_features: str = "train"
    # Where each epoch's labels come from: "dbscan" (the method) or "oracle" — the dataset's true training ids, a
    # positive control that proves the loop (notebook 04, tests/test_usl_sanity.py); never a way to train for real.
    pseudo_labels: str = "dbscan"


@dataclass(frozen=True)
class UDAConfig(USLConfig):
    """Domain adaptation = USL on the target from a source-supervised checkpoint (docs/reference.md §5.7)."""

    source_dataset: str = "msmt17"
    # Our addition, off in the paper's recipe: before the first epoch, re-estimate every BatchNorm's running
    # statistics (ICS stem, BN neck) on the target's training images without gradients (AdaBN), so the first
    # pseudo labels and memory come from target-normalised features (reid_lab.usl.train, docs/reference.md §5.7).
    adabn: bool = False


@dataclass(frozen=True)
class VizConfig:
    """Attention and ranking figures (docs/reference.md §6)."""

    threshold: float = 0.6
    num_queries: int = 8
    topk: int = 10
    tsne_points: int = 2000


STAGES: dict[str, type] = {
    "data": DataConfig,
    "pretrain": PretrainConfig,
    "supervised": SupervisedConfig,
    "usl": USLConfig,
    "uda": UDAConfig,
    "viz": VizConfig,
}

# What tiny and smoke change relative to the paper's values.
_PROFILE_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {},
    "tiny": {
        "data": dict(
            synthetic=True, height=128, width=64, market_train_ids=150, market_test_ids=150,
            msmt_train_ids=150, msmt_test_ids=150, images_per_id=12, pool_size=6000, num_workers=0,
        ),
        # DINO on a CPU (issues #11, 17; notebook 02 section 3): batch 64 instead of 512, so a sharper teacher
        # (0.02 instead of 0.04) and 1,024 prototypes instead of 65,536 — with the official 0.04 / 4,096 the ICS
        # teacher drifted to uniform within 36 steps (98.6 % of ln K; 0.02 alone: 88 %; 0.02 + 1,024: 53 %,
        # measured). Issue 17 (benchmarks/dino_pretrain_speed.py; screens with the frozen k-NN probe, 75 SynthMarket
        # test ids at 64x32, random ICS weights 11.5 / 9.6 / 11.5 mAP for seeds 0-2, raw pixels 24.5):
        # * crops 64x32 / 32x16 instead of 128x64 / 64x32: the ICS stem is ~85 % of a step's compute and scales with
        #   the pixels — 5.2x the images/s of the compute alone; fine-tuning still runs at 128x64 (pos_embed resized
        #   on loading, as the official code between resolutions);
        # * blur radius scaled with the crop: (0.1, 2.0) px is the official blur at 256x128; x 64/256 = (0.025, 0.5);
        # * colour: the official jitter (0.4/0.4/0.2/0.1, p 0.8) and grayscale 0.2. A quarter of it without grayscale
        #   (the worlds' own colour nuisance is mild and identity lives largely in clothing colour) looked right and
        #   was worse: frozen k-NN after 350 steps 4.6 (mild) vs 6.6 (official); on the whole test split the mild
        #   run's top-1 neighbours came from the query's own camera 28 % of the time (372 steps) against 24 %
        #   (official, 279 steps; chance 17 %): two views of one image share their colour cast, the easiest thing to
        #   match once colour is barely augmented (benchmarks/dino_features.py). Person-shaped crops (crop_ratio
        #   scaled by 1/2): 7.0 vs 6.6 at step 450, stopped there for time;
        # * lr 0.0005 per 256 images and teacher momentum 0.996 (the paper's): with 0.002 and 0.99 (issue 11's values)
        #   the probe fell 11.5 -> 5.7 in 155 steps, against 9.1 (both with the unscaled blur);
        # * 20 epochs (1,860 steps, 10x issue 11's course run), 2 warm-up epochs.
        "pretrain": dict(
            arch="vit_tiny", epochs=20, warmup_epochs=2, batch_size=64, base_lr=0.0005, out_dim=1024,
            head_hidden_dim=512, teacher_temp=0.02, warmup_teacher_temp=0.02, momentum_teacher=0.996,
            global_size=(64, 32), local_size=(32, 16), local_crops_number=4, keep_ratio=None,
            blur_radius=(0.025, 0.5),
        ),
        # 12 epochs of 150 ids x 12 images at base_lr 0.008: the paper's 0.0004 is tuned for 120 epochs of ViT-S from
        # pre-trained weights; a 4-block ViT that may start from scratch needs a larger step to learn in minutes.
        "supervised": dict(arch="vit_tiny", height=128, width=64, epochs=12, warmup_epochs=2, eval_period=3,
                           base_lr=0.008),
        # USL/UDA tiny (issue 22). Every run here starts from a shipped course model (ICS tiny ViT, SynthMarket,
        # 1,818 training images, 12 per person) and is measured by benchmarks/usl_recipe.py; the full table is
        # reid_lab/assets/usl_ablation_tiny.json (notebook 04 section 5 prints it). On one CPU thread an ICS epoch of
        # 60 x 64 images takes ~2.5-3 min (clustering ~20 s, the training-forward memory pass ~15 s, evaluation ~20 s).
        # * memory_features "train" (the default in every profile, our fix): with the official eval-mode memory the
        #   true-id loop breaks the supervised model (issue 22: 41 -> 28 % mAP); tests/test_usl_sanity.py.
        # * k1 12 / k2 4 (official 30 / 6): 12 images per person. Jaccard + DBSCAN on the supervised model's features
        #   (eps 0.45): k1 30 -> 90 clusters, purity 0.50; k1 12 -> 152 clusters, purity 0.79 (150 true ids).
        #   eps 0.5 at k1 12: 148 clusters, 22 % outliers, purity 0.75 (eps 0.4: 0.84 purity, 33 % outliers; USL
        #   from the supervised model ended at 35.2 vs 27.4 % mAP, same recipe otherwise, one seed).
        # * memory_momentum 0.9 (official 0.2) and temperature 0.1 (official 0.05): with 75 %-pure clusters the
        #   hardest sample of a cluster in a batch is usually a wrong member; at m = 0.2 it overwrites 80 % of the
        #   centroid each step, and at tau = 0.05 the wrong members dominate the gradient. From the supervised
        #   model (41.2 % mAP), mAP after epochs 1-3, one seed: official m/tau 32.7, 29.4, 27.4; m 0.9 37.6, 32.3,
        #   33.0; m 0.9 + tau 0.1 40.0, 38.7, ... (the ablation file has the rest).
        # * lr 3.5e-4 (the paper's): 3.5e-3, the earlier tiny value, drops the supervised model to 2 % with DBSCAN
        #   and to 20 % even with true ids (issue 22). drop path 0.1 instead of 0.3: worse (31.4, 25.4 after 2).
        # * 60 iterations per clustering x 3 epochs, no lr step: what a CPU affords for the multi-seed course runs
        #   (reid_lab.usl.course); batch 64 in one BN chunk = the official per-GPU BN group (256 over 4 GPUs).
        "usl": dict(arch="vit_tiny", height=128, width=64, epochs=3, iters=60, batch_size=64, lr=3.5e-4, step_size=20,
                    eval_step=1, bn_chunks=1, k1=12, k2=4, eps=0.5, memory_momentum=0.9, temperature=0.1),
        # UDA: the same recipe on the target. UDAConfig.adabn (our AdaBN start) stays off: SynthMarket->SynthMSMT
        # (ICS stand-in source, 1 UDA epoch, seeds 1-2) it made the first pseudo labels coarser at eps 0.5 (38
        # clusters, purity 0.08 vs 85, 0.16) and UDA ended at the same 2.3 mAP either way (benchmarks/uda_effect.py,
        # measured before the memory fix). First SynthMSMT clustering from the supervised SynthMarket DINO+ICS model:
        # k1 30 / eps 0.5: 97 clusters, 41 % outliers, purity 0.31; k1 12 / eps 0.5: 121 clusters, 59 %, 0.44.
        "uda": dict(arch="vit_tiny", height=128, width=64, epochs=3, iters=60, batch_size=64, lr=3.5e-4, step_size=20,
                    eval_step=1, bn_chunks=1, k1=12, k2=4, eps=0.5, memory_momentum=0.9, temperature=0.1),
        "viz": dict(num_queries=6, tsne_points=600),
    },
    "smoke": {
        "data": dict(
            synthetic=True, height=64, width=32, synth_height=64, synth_width=32, market_train_ids=12,
            market_test_ids=12, market_cameras=3, msmt_train_ids=12, msmt_test_ids=12, msmt_cameras=4,
            images_per_id=6, pool_size=120, num_workers=0,
        ),
        "pretrain": dict(
            arch="vit_tiny", epochs=1, warmup_epochs=0, batch_size=8, out_dim=256, head_hidden_dim=64, head_bottleneck_dim=32,
            global_size=(64, 32), local_size=(32, 16), local_crops_number=2, keep_ratio=None,
        ),
        "supervised": dict(arch="vit_tiny", height=64, width=32, epochs=1, batch_size=16, warmup_epochs=1,
                           eval_period=1),
        "usl": dict(arch="vit_tiny", height=64, width=32, epochs=1, iters=2, batch_size=16, num_instances=4,
                    eval_step=1, bn_chunks=1),
        "uda": dict(arch="vit_tiny", height=64, width=32, epochs=1, iters=2, batch_size=16, num_instances=4,
                    eval_step=1, bn_chunks=1),
        "viz": dict(num_queries=2, topk=5, tsne_points=100),
    },
}


def resolve(stage: str, profile: str = "full", *, dry_run: int | None = None, **overrides: Any):
    """Return the frozen config of ``stage`` under ``profile`` with ``overrides`` applied.

    Unknown stages, profiles or keys raise ``KeyError``/``ValueError`` naming the valid choices. ``dry_run``: the
    iteration cap of a fast dev run (:mod:`reid_lab.dryrun`; ``None`` = the active one, 0 = none) caps epochs and
    batch sizes after the overrides.
    """
    if stage not in STAGES:
        raise KeyError(f"unknown stage {stage!r}; valid stages: {', '.join(STAGES)}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    cls = STAGES[stage]
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise UnknownConfigKeyError(
            f"unknown {stage} config key(s) {unknown}; valid keys: {', '.join(sorted(valid))}"
        )
    values = {**_PROFILE_OVERRIDES[profile].get(stage, {}), **overrides}
    from .dryrun import active, cap_config

    return validate(cap_config(stage, validate(cls(**values)), active() if dry_run is None else dry_run)[0])


# Integer fields that may be 0; every other int field is a count or a size and must be >= 1.
_ZERO_OK_INTS = frozenset({"seed", "synth_seed", "warmup_epochs", "warmup_teacher_temp_epochs", "freeze_last_layer",
                           "num_workers", "local_crops_number"})
# Float fields that are fractions, momenta or probabilities: [0, 1]. Every other float is a rate/scale: >= 0.
_UNIT_FLOATS = frozenset({"pool_off_domain", "momentum_teacher", "center_momentum", "momentum", "memory_momentum",
                          "drop_path_rate", "label_smoothing", "warmup_lr_factor", "min_lr_factor", "keep_ratio",
                          "eps", "threshold"})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(name: str, value: Any, hint: Any) -> tuple[Any, str | None]:
    """``(value, None)`` with ints widened to float where a float is expected, or ``(value, expectation)``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None, None
        inner = [a for a in args if a is not type(None)]
        value, expected = _check(name, value, inner[0]) if len(inner) == 1 else (value, f"one of {inner}")
        return value, expected and f"{expected} or None"
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (tuple, list)) or len(value) != len(args):
            return value, f"a tuple of {len(args)} ({', '.join(a.__name__ for a in args)})"
        checked = [_check(name, v, a) for v, a in zip(value, args)]
        bad = next((e for _, e in checked if e), None)
        return tuple(v for v, _ in checked), bad and f"a tuple of {len(args)} values, each {bad}"
    if hint is bool:
        return value, None if isinstance(value, bool) else "True or False"
    if hint is int:
        if name in _ZERO_OK_INTS:
            return value, None if _is_int(value) and value >= 0 else "a non-negative int"
        return value, None if _is_int(value) and value >= 1 else "a positive int"
    if hint is float:
        if not (_is_int(value) or isinstance(value, float)) or not math.isfinite(value):
            return value, "a finite float"
        if name in _UNIT_FLOATS:
            return float(value), None if 0.0 <= value <= 1.0 else "a float in [0, 1]"
        return float(value), None if value >= 0 else "a non-negative float"
    if hint is str:
        return value, None if isinstance(value, str) and value else "a non-empty str"
    return value, None


def validate(config: Any) -> Any:
    """Check every field of a stage config against its annotation; return it (ints given for floats widened).

    Counts and sizes must be positive ints (a few, such as ``seed`` or ``warmup_epochs``, may be 0), rates
    non-negative floats, fractions and momenta in [0, 1], tuples of the annotated length; ``None`` only where
    the annotation allows it. Raises :class:`ConfigError` listing every bad field with its value.
    """
    hints = typing.get_type_hints(type(config))
    fixed, problems = {}, []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        checked, expected = _check(field.name, value, hints[field.name])
        if expected:
            problems.append(f"{field.name}={value!r} ({type(value).__name__}): expected {expected}")
        elif checked is not value:
            fixed[field.name] = checked
    if problems:
        raise ConfigError(f"invalid {type(config).__name__}: " + "; ".join(problems))
    return dataclasses.replace(config, **fixed) if fixed else config


def with_given(config: Any, **values: Any) -> Any:
    """``config`` with the non-``None`` ``values`` replaced (and validated).

    Trainers fold their keyword shortcuts (``jitter_strength=``, ``official_schedule=`` …) into the config with this,
    so the config — saved in every checkpoint and compared on resume — is the one record of each setting.
    """
    given = {k: v for k, v in values.items() if v is not None}
    return validate(dataclasses.replace(config, **given)) if given else config


def to_dict(config) -> dict[str, Any]:
    """JSON-friendly dict of a config (tuples become lists)."""
    return dataclasses.asdict(config)


__all__ = ["PROFILES", "STAGES", "ConfigError", "UnknownConfigKeyError", "resolve", "validate", "with_given", "to_dict",
           "DataConfig", "PretrainConfig", "SupervisedConfig",
           "USLConfig", "UDAConfig", "VizConfig"]


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["lr=0.1", "arch=vit_tiny"]`` (the CLI's ``--set KEY=VALUE``) → ``{"lr": 0.1, "arch": "vit_tiny"}``.

    Values are Python literals when they parse as one, strings otherwise.
    """
    import ast

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key.strip()] = raw
    return out
