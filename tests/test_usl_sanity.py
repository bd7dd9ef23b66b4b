"""Sanity tests that prove the USL loop on cases whose answer is known (issue 22).

The world is the tiny profile's SynthMarket cut to its first 40 training and 40 test identities (12 images each, the
notebook's images at 128x64), the model the ICS tiny ViT. The *good start* is the shipped supervised DINO+ICS course
model (``reid_lab/assets/reid_dino_ics_tiny.pth``); *oracle* runs replace DBSCAN by the true training ids
(``USLConfig.pseudo_labels="oracle"``), so whatever they lose is the loop's fault, not the clustering's.

Each test also runs its control — the official memory (``memory_features="eval"``) or no training — and checks that
the control lands elsewhere, so the assertion can fail. Runs are seeded; CPU, one thread.
"""
from __future__ import annotations

import copy
import math

import pytest

from reid_lab.config import resolve
from reid_lab.data import Market1501, build_usl_transforms
from reid_lab.data.base import relabel
from reid_lab.data.synthetic.worlds import generate_market
from reid_lab.tutorial import zoo
from reid_lab.usl import (
    GhostBatchNorm, build_usl_model, extract_features_for_clustering, train_usl, training_forward_features,
)
from test_usl import _one_thread  # noqa: F401  (autouse: one torch thread, as in the other USL tests)

TRAIN_IDS, TEST_IDS = 40, 40
GOOD_START = zoo.ASSETS / "reid_dino_ics_tiny.pth"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """SynthMarket (tiny) with its first TRAIN_IDS training and TEST_IDS test identities."""
    folder = generate_market(tmp_path_factory.mktemp("synth"), resolve("data", "tiny"))
    full = Market1501(folder)
    train_ids = sorted({s.pid for s in full.train})[:TRAIN_IDS]
    test_ids = set(sorted({s.pid for s in full.query})[:TEST_IDS])
    small = copy.copy(full)
    small.train = relabel([s for s in full.train if s.pid in set(train_ids)])
    small.query = [s for s in full.query if s.pid in test_ids]
    small.gallery = [s for s in full.gallery if s.pid in test_ids or s.pid <= 0]
    return small


def _cfg(**overrides):
    # batches of 8 identities x 8 images, as the tiny recipe (4 identities per batch lost 3 points with true ids)
    base = dict(arch="vit_tiny_ics", epochs=1, iters=10, batch_size=64, num_instances=8, lr=3.5e-4, eval_step=1,
                step_size=20, seed=1)
    return resolve("usl", "tiny", **{**base, **overrides})


def test_first_steps_loss_is_what_the_training_forward_memory_implies(world, tmp_path):
    """True ids and lr 0 (the memory updates, the model does not): with the memory built from training-forward
    features (the tiny recipe) the first steps' loss sits below ln C — every sample is nearer its own centroid than
    chance. The official loop builds it from the eval-mode features through the fresh BN neck, which all share one
    direction while the same image's training feature points elsewhere: every centroid its hard-sample update
    (momentum 0.2, τ 0.05) has touched attracts every sample, and the loss climbs far above ln C (issue 22: 11.6
    against ln C = 5.0 on SynthMarket; measured here 2.0 vs 8.7, ln C = 3.7)."""
    cfg = _cfg()
    model = build_usl_model(cfg, GOOD_START)
    train = sorted(world.train)
    eval_feats = extract_features_for_clustering(model, train, cfg.height, cfg.width, progress=False)
    train_feats = training_forward_features(GhostBatchNorm(model, cfg.bn_chunks), train,
                                            build_usl_transforms(cfg.height, cfg.width, train=True), cfg.batch_size,
                                            "cpu", seed=0)
    assert float((eval_feats @ eval_feats.T).mean()) > 0.9, "eval-mode features through a fresh neck share one direction"
    assert float((eval_feats * train_feats).sum(1).mean()) < 0.5, "the same image's training feature points elsewhere"

    steps = dict(pseudo_labels="oracle", lr=0.0, iters=10)
    ours = _run(world, tmp_path, "ours", **steps)  # the tiny recipe
    official = _run(world, tmp_path, "official", memory_features="eval", memory_momentum=0.2, temperature=0.05,
                    **steps)
    ln_c = math.log(TRAIN_IDS)
    assert ours.history[0]["num_clusters"] == official.history[0]["num_clusters"] == TRAIN_IDS
    assert ours.history[0]["loss"] < ln_c < official.history[0]["loss"] - 2, (ours.history, official.history)
    # lr 0: no weight moved; only the BN neck's running statistics followed the training batches
    assert ours.final["mAP"] == pytest.approx(ours.initial["mAP"], abs=0.01)


def _run(world, tmp_path, name, init=GOOD_START, **overrides):
    cfg = _cfg(**overrides)
    return train_usl(cfg, world, tmp_path / name, init=init, device="cpu", show_progress=False, resume=False)


def test_oracle_loop_holds_a_good_start_where_the_official_memory_breaks_it(world, tmp_path):
    """True ids, one clustering, 20 steps at the paper's lr from the shipped supervised model: the tiny recipe's loop
    keeps mAP within a point of the start; the official loop (eval-mode memory, momentum 0.2, τ 0.05) loses several
    points in the same steps (measured: +0.3 and −5.6 points)."""
    ours = _run(world, tmp_path, "ours", pseudo_labels="oracle", iters=20)
    official = _run(world, tmp_path, "official", pseudo_labels="oracle", iters=20, memory_features="eval",
                    memory_momentum=0.2, temperature=0.05)
    start = ours.initial["mAP"]
    assert official.initial["mAP"] == pytest.approx(start)
    assert ours.final["mAP"] >= start - 0.01, (start, ours.final["mAP"])
    assert official.final["mAP"] < start - 0.03, (start, official.final["mAP"])


def test_oracle_loop_improves_a_random_ics_start_as_supervised_training_does(world, tmp_path):
    """True ids from random ICS weights: the loop learns identities — mAP rises clearly within 3 clusterings of 20
    steps (lr 1e-3; the earlier tiny lr 3.5e-3 did not learn: 17.6 -> 16.1 % here); the same loop with lr 0 stays
    where it started."""
    learned = _run(world, tmp_path, "learned", init=None, pseudo_labels="oracle", epochs=3, iters=20, lr=1e-3)
    frozen = _run(world, tmp_path, "frozen", init=None, pseudo_labels="oracle", lr=0.0)
    start = learned.initial["mAP"]
    assert frozen.initial["mAP"] == pytest.approx(start)  # the same seeded random weights
    assert learned.final["mAP"] > start + 0.03, (start, learned.final["mAP"])
    assert abs(frozen.final["mAP"] - start) < 0.005, (start, frozen.final["mAP"])


def test_usl_from_a_good_start_stays_near_it_where_the_official_loop_falls(world, tmp_path):
    """DBSCAN pseudo labels, the tiny recipe, two clusterings of 10 steps from the shipped supervised model: the run
    ends within 2 points of its start (the goal "at or above" is not met on the toy world — the notebook-04 ablation
    measures why); the official loop (eval memory, momentum 0.2, τ 0.05) falls much further in the same steps."""
    ours = _run(world, tmp_path, "dbscan", epochs=2)
    official = _run(world, tmp_path, "dbscan_official", epochs=2, memory_features="eval", memory_momentum=0.2,
                    temperature=0.05)
    start = ours.initial["mAP"]
    assert ours.history[0]["num_clusters"] > TRAIN_IDS // 2
    assert ours.final["mAP"] >= start - 0.02, (start, ours.final["mAP"])
    assert official.final["mAP"] < ours.final["mAP"] - 0.05, (ours.final["mAP"], official.final["mAP"])
