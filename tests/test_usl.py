"""USL / UDA with Cluster Contrast (docs/reference.md §5): memory, ghost BN, pseudo labels, the train loop, resume, NaN, CLI.

A hand-made dataset (10 identities x 8 training images over 3 cameras; the 64x32 images of test_supervised, whose
colours and stripes encode the identity) clusters even with a random-init ViT, so every run takes seconds.
"""
from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from reid_lab import engine
from reid_lab.config import resolve
from reid_lab.data import RandomMultipleGallerySampler, ReIDDataset, Sample
from reid_lab.models import build_backbone, load_pretrained
from reid_lab.usl import (
    ClusterMemory, GhostBatchNorm, USLModel, build_usl_model, chunks_per_process, cluster_centroids,
    frozen_running_stats, pseudo_label_epoch, train_uda, train_usl,
)
from reid_lab.usl.train import _GlobalBatches
from fixtures_data import toy_reid_image as _image  # the toy identity images (colours + stripes)

IDS, PER_ID = 10, 8


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread avoids oversubscription on the shared 2-core machine (10x slower otherwise)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> ReIDDataset:
    root = tmp_path_factory.mktemp("toy_usl")
    splits: dict[str, list[Sample]] = {"train": [], "query": [], "gallery": []}
    for split in splits:
        (root / split).mkdir()
    for pid in range(IDS):
        for k in range(PER_ID + 3):  # 8 train images over cameras 0-2, one query (camera 0), two gallery (1, 2)
            split, cam = ("train", k % 3) if k < PER_ID else ("query", 0) if k == PER_ID else ("gallery", 1 + k % 2)
            sample = Sample(str(root / split / f"{pid:04d}_c{cam}_{k}.png"), pid, cam)
            _image(pid, k).save(sample.path)
            splits[split].append(sample)
    return ReIDDataset(name="Toy", root=root, **splits)


def _cfg(**overrides):
    base = dict(arch="vit_tiny", height=64, width=32, epochs=2, iters=2, batch_size=16, num_instances=4, eps=0.5,
                bn_chunks=2, eval_step=2, lr=0.01)
    base.update(overrides)
    return resolve("usl", "smoke", **base)


# ------------------------------------------------------------------------------------------------ memory
def test_cluster_memory_loss_and_hard_update_by_hand():
    centroids = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    memory = ClusterMemory(centroids, temperature=0.5, momentum=0.2)
    x = torch.tensor([[0.6, 0.8], [0.8, 0.6], [0.0, 2.0]], requires_grad=True)  # row 2 is renormalised to (0, 1)
    y = torch.tensor([0, 0, 1])
    loss = memory(x, y)
    # logits = x·Mᵀ / 0.5: (1.2, 1.6, -1.2), (1.6, 1.2, -1.6), (0, 2, 0); CE = -logit_y + log-sum-exp
    by_hand = [-1.2 + math.log(math.exp(1.2) + math.exp(1.6) + math.exp(-1.2)),
               -1.6 + math.log(math.exp(1.6) + math.exp(1.2) + math.exp(-1.6)),
               -2.0 + math.log(2 + math.exp(2.0))]
    assert loss.item() == pytest.approx(sum(by_hand) / 3, abs=1e-6)
    assert torch.equal(memory.features, centroids)  # no update before backward
    loss.backward()
    # cluster 0: similarities 0.6 (row 0) and 0.8 (row 1) -> the hardest is row 0 = (0.6, 0.8);
    # 0.2·(1, 0) + 0.8·(0.6, 0.8) = (0.68, 0.64), normalised by sqrt(0.872)
    norm = math.sqrt(0.68**2 + 0.64**2)
    torch.testing.assert_close(memory.features[0], torch.tensor([0.68 / norm, 0.64 / norm]))
    torch.testing.assert_close(memory.features[1], torch.tensor([0.0, 1.0]))  # 0.2·c + 0.8·c for x = c
    torch.testing.assert_close(memory.features[2], torch.tensor([-1.0, 0.0]))  # absent from the batch: unchanged


def test_cluster_memory_gradient_uses_the_memory_before_the_update():
    torch.manual_seed(0)
    centroids = F.normalize(torch.randn(4, 6), dim=1)
    x = torch.randn(8, 6, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    ClusterMemory(centroids, temperature=0.05, momentum=0.2)(x, y).backward()
    x_ref = x.detach().clone().requires_grad_(True)
    F.cross_entropy(F.normalize(x_ref, dim=1) @ centroids.t() / 0.05, y).backward()
    torch.testing.assert_close(x.grad, x_ref.grad)


def test_cluster_memory_ties_pick_the_first_instance_and_bad_targets_fail():
    memory = ClusterMemory(torch.tensor([[1.0, 0.0]]), temperature=1.0, momentum=0.5)
    x = torch.tensor([[0.0, 1.0], [0.0, -1.0]], requires_grad=True)  # both at similarity 0 to the centroid
    memory(x, torch.tensor([0, 0])).backward()
    torch.testing.assert_close(memory.features[0], F.normalize(torch.tensor([0.5, 0.5]), dim=0))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\)"):
        memory(x, torch.tensor([0, -1]))


def test_cluster_centroids_are_normalised_means():
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [5.0, 5.0]])
    c = cluster_centroids(feats, np.array([0, 0, 1, -1]))
    torch.testing.assert_close(c, torch.tensor([[2 ** -0.5, 2 ** -0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="without gaps"):
        cluster_centroids(feats, np.array([0, 0, 2, -1]))
    with pytest.raises(ValueError, match="every label is -1"):
        cluster_centroids(feats, np.array([-1, -1, -1, -1]))


# ------------------------------------------------------------------------------------------------ ghost BN
def test_ghost_bn_matches_four_separate_64_image_forwards_by_hand():
    torch.manual_seed(0)
    x = torch.randn(256, 3) * torch.arange(1, 257).float()[:, None] / 64  # chunk statistics clearly differ
    ghost = GhostBatchNorm(nn.BatchNorm1d(3), chunks=4).train()
    out = ghost(x)
    for c in range(4):  # each 64-image chunk normalised with its own biased batch statistics
        chunk = x[64 * c: 64 * (c + 1)]
        by_hand = (chunk - chunk.mean(0)) / torch.sqrt(chunk.var(0, unbiased=False) + 1e-5)
        torch.testing.assert_close(out[64 * c: 64 * (c + 1)], by_hand, rtol=1e-4, atol=1e-5)
    # DataParallel keeps the running statistics of the first device's chunk only: one update with momentum 0.1
    bn = ghost.module
    torch.testing.assert_close(bn.running_mean, 0.1 * x[:64].mean(0))
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * x[:64].var(0, unbiased=True))
    assert int(bn.num_batches_tracked) == 1
    plain = GhostBatchNorm(nn.BatchNorm1d(3), chunks=1).train()(x)
    assert (plain - out).abs().max() > 0.1  # one 256-image group is a different normalisation
    ghost.eval()
    torch.testing.assert_close(ghost(x), bn(x))  # eval mode: the plain module with running statistics


def test_ghost_bn_on_an_ics_model_equals_separate_chunk_forwards():
    torch.manual_seed(0)
    model = USLModel(build_backbone("vit_tiny_ics", img_size=(64, 32), drop_path_rate=0.0)).train()
    reference = USLModel(build_backbone("vit_tiny_ics", img_size=(64, 32), drop_path_rate=0.0)).train()
    reference.load_state_dict(model.state_dict())
    x = torch.randn(8, 3, 64, 32)
    out = GhostBatchNorm(model, chunks=2)(x)
    expected = torch.cat([reference(x[:4]), reference(x[4:])])
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(8))  # post-BN, L2-normalised output


def test_chunks_per_process_divides_over_ranks():
    assert chunks_per_process(4, 1) == 4 and chunks_per_process(4, 2) == 2 and chunks_per_process(4, 4) == 1
    with pytest.raises(ValueError, match="bn_chunks=4 is not divisible by the 3 processes"):
        chunks_per_process(4, 3)
    with pytest.raises(ValueError, match="positive integer"):
        GhostBatchNorm(nn.Identity(), chunks=0)


# ------------------------------------------------------------------------------------------------ batches
def test_global_batches_cut_passes_and_split_over_ranks():
    records = [Sample(f"{i}.png", i // 4, i % 2) for i in range(20)]  # 5 ids x 4 images, 2 cameras
    sampler = RandomMultipleGallerySampler(records, num_instances=4, seed=3)
    single = list(_GlobalBatches(sampler, batch_size=8, iters=5))
    assert len(single) == 5 and all(len(b) == 8 for b in single)
    # a pass yields 5 ids x 4 = 20 indices -> 2 whole batches, the remaining 4 are dropped
    first, second = sampler.epoch_indices(0), sampler.epoch_indices(1)
    assert single[0] == first[:8].tolist() and single[1] == first[8:16].tolist()
    assert single[2] == second[:8].tolist()
    ranks = [list(_GlobalBatches(sampler, batch_size=8, iters=5, rank=r, world_size=2)) for r in (0, 1)]
    assert [a + b for a, b in zip(*ranks)] == single
    assert len(_GlobalBatches(sampler, batch_size=32, iters=5)) == 0  # a pass does not fill one batch


# ------------------------------------------------------------------------------------------------ pseudo labels
def test_pseudo_label_epoch_clusters_the_toy_identities(dataset):
    torch.manual_seed(1)
    cfg = _cfg()
    model = build_usl_model(cfg)
    samples = sorted(dataset.train)
    labels = pseudo_label_epoch(model, samples, cfg, "cpu", progress=False)
    assert labels.labels.shape == (len(samples),) and labels.features.shape == (len(samples), 192)
    torch.testing.assert_close(labels.features.norm(dim=1), torch.ones(len(samples)))
    assert labels.num_clusters >= 2 and labels.stats.ari is not None and labels.stats.ari > 0.3
    assert len(labels.samples) == int((labels.labels >= 0).sum())
    assert {s.pid for s in labels.samples} == set(range(labels.num_clusters))
    torch.testing.assert_close(labels.centroids, cluster_centroids(labels.features, labels.labels))
    # min_samples above N leaves every image an outlier: no cluster, empty memory init, no crash
    none = pseudo_label_epoch(model, samples, _cfg(min_samples=1000), "cpu", features=labels.features)
    assert none.num_clusters == 0 and none.samples == [] and none.centroids.shape == (0, 192)


def test_oracle_labels_renumber_the_true_ids_in_order_of_first_appearance(dataset):
    from reid_lab.usl import oracle_labels

    samples = [Sample(f"{i}.png", pid, 0) for i, pid in enumerate([7, 7, 3, 9, 3, 7])]
    assert oracle_labels(samples).tolist() == [0, 0, 1, 2, 1, 0]
    with pytest.raises(ValueError, match="needs training samples with true ids"):
        oracle_labels([Sample("a.png", -1, 0), Sample("b.png", -1, 0)])
    train = sorted(dataset.train)
    oracle = pseudo_label_epoch(None, train, _cfg(pseudo_labels="oracle"), "cpu",
                                features=torch.nn.functional.normalize(torch.randn(len(train), 8), dim=1))
    assert oracle.num_clusters == IDS and oracle.stats.ari == pytest.approx(1.0) and len(oracle.samples) == len(train)


class _Embed(nn.Module):
    """A stand-in backbone + neck: per-image linear map then BatchNorm1d (batch statistics in train mode)."""

    embed_dim = 6

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3 * 64 * 32, 6)
        self.bn = nn.BatchNorm1d(6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.linear(x.flatten(1)))


def test_training_forward_features_keep_the_order_and_leave_bn_buffers_untouched(dataset):
    """Each row is its own image's training-forward feature whatever the batch order; running statistics stay."""
    from reid_lab.data import build_usl_transforms
    from reid_lab.usl import training_forward_features

    torch.manual_seed(0)
    model = _Embed()
    samples = sorted(dataset.train)
    transform = build_usl_transforms(64, 32, train=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = training_forward_features(model, samples, transform, 80, "cpu", seed=0)
    b = training_forward_features(model, samples, transform, 80, "cpu", seed=1)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    torch.testing.assert_close(a.norm(dim=1), torch.ones(len(samples)))
    # one batch holding every image: the same statistics for both orders, so the rows must agree exactly
    whole = training_forward_features(model, samples, transform, len(samples), "cpu", seed=3)
    images = torch.stack([transform(Image.open(s.path).convert("RGB")) for s in samples])
    model.train()
    with torch.no_grad(), frozen_running_stats(model):
        direct = F.normalize(model(images), dim=1)
    torch.testing.assert_close(whole, direct, atol=1e-5, rtol=1e-5)
    # batches of 80 in two different orders: batch statistics differ, but each row stays close to its own image
    assert float((a * b).sum(1).min()) > 0.5 and float((a * direct).sum(1).mean()) > 0.9


# ------------------------------------------------------------------------------------------------ training
def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([v.float().flatten() for v in model.state_dict().values()])


@pytest.fixture(scope="module")
def full_run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("usl_full")
    return train_usl(_cfg(), dataset, out, device="cpu", show_progress=False), out


def test_train_usl_logs_evaluates_and_saves(full_run):
    result, out = full_run
    assert result.finished and result.epochs_done == 2 and result.model_path == out / "model.pth"
    assert [r["epoch"] for r in result.history] == [1, 2]
    for r in result.history:
        assert r["num_clusters"] >= 2 and not r["skipped"] and math.isfinite(r["loss"]) and r["images_per_s"] > 0
        assert r["outlier_fraction"] == r["num_outliers"] / (IDS * PER_ID) and r["ari"] is not None
        assert r["lr"] == pytest.approx(0.01)
    assert "mAP" not in result.history[0] and 0.0 <= result.history[1]["mAP"] <= 1.0  # eval_step 2 and the end
    assert set(result.initial) >= {"mAP", "rank1", "mINP"} and result.final == {
        k: result.history[1][k] for k in result.final}
    assert len(engine.JsonlLog(out / "log.jsonl").read()) == 2
    # the model: post-BN normalised output; model.pth loads as a backbone (neck dropped)
    x = torch.randn(3, 3, 64, 32)
    torch.testing.assert_close(result.model(x).norm(dim=1), torch.ones(3))
    from reid_lab.reid import extract

    assert extract(result.model, x).shape == (3, 192)  # the inference API takes the USL model as is
    backbone = build_backbone("vit_tiny", img_size=(64, 32)).eval()
    report = load_pretrained(backbone, out / "model.pth")
    assert "bottleneck.running_mean" in report.ignored
    torch.testing.assert_close(backbone(x), result.model.base(x))


def test_resume_continues_to_the_same_weights(dataset, full_run, tmp_path):
    result, _ = full_run
    part = train_usl(_cfg(), dataset, tmp_path / "part", device="cpu", show_progress=False, stop_after=1)
    assert part.epochs_done == 1 and not part.finished and part.model_path is None
    shutil.copytree(tmp_path / "part", tmp_path / "nan")  # for the NaN check below
    resumed = train_usl(_cfg(), dataset, tmp_path / "part", device="cpu", show_progress=False, resume=True)
    assert resumed.epochs_done == 2 and resumed.finished
    assert torch.equal(_flat(resumed.model), _flat(result.model))
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in result.history]
    assert resumed.final == result.final and resumed.initial == result.initial
    assert len(engine.JsonlLog(tmp_path / "part" / "log.jsonl").read()) == 2

    # NaN/inf loss in epoch 2: stops before the update, the epoch-1 checkpoint stays as it was
    before = (tmp_path / "nan" / "checkpoint.pth").read_bytes()
    with pytest.raises(engine.NonFiniteLossError, match="epoch 2, global step 2.*checkpoint.pth is intact"):
        train_usl(_cfg(), dataset, tmp_path / "nan", device="cpu", show_progress=False,
                  train_transform=lambda img: torch.full((3, 64, 32), float("nan")))
    assert (tmp_path / "nan" / "checkpoint.pth").read_bytes() == before
    assert engine.load_checkpoint(tmp_path / "nan" / "checkpoint.pth")["epoch"] == 1


def test_epoch_without_clusters_is_skipped_not_fatal(dataset, tmp_path, caplog):
    result = train_usl(_cfg(epochs=1, min_samples=1000), dataset, tmp_path, device="cpu", show_progress=False)
    (record,) = result.history
    assert record["skipped"] and record["num_clusters"] == 0 and record["loss"] is None
    assert record["num_outliers"] == IDS * PER_ID and "mAP" in record
    assert "found no cluster" in caplog.text
    assert result.finished and (tmp_path / "checkpoint.pth").is_file()


def test_train_uda_starts_from_the_source_backbone_and_drops_its_head(dataset, tmp_path):
    from reid_lab.reid import build_reid_model, reid_checkpoint

    torch.manual_seed(5)
    source = build_reid_model("vit_tiny", num_classes=7, img_size=(64, 32))
    with torch.no_grad():
        source.bottleneck.running_mean.fill_(3.0)  # a source BN neck that must not be carried over
    engine.save_checkpoint(reid_checkpoint(source.eval(), epoch=1), tmp_path / "source.pth")
    cfg = resolve("uda", "smoke", **{k: v for k, v in vars(_cfg(epochs=1, iters=1)).items()})
    assert cfg.source_dataset == "msmt17"
    start = build_usl_model(cfg, tmp_path / "source.pth")
    assert torch.equal(start.bottleneck.running_mean, torch.zeros(192))
    x = torch.randn(2, 3, 64, 32)
    torch.testing.assert_close(start.base.eval()(x), source.base(x))
    result = train_uda(cfg, dataset, tmp_path / "source.pth", tmp_path / "uda", device="cpu", show_progress=False)
    assert result.finished and result.history[0]["num_clusters"] >= 1
    assert engine.load_checkpoint(result.model_path)["source"] == "uda"
    with pytest.raises(FileNotFoundError, match="source checkpoint .*missing.pth does not exist"):
        train_uda(cfg, dataset, tmp_path / "missing.pth", tmp_path / "uda2", device="cpu")


def test_bad_configurations_fail_with_clear_messages(dataset, tmp_path):
    with pytest.raises(ValueError, match="batch_size=16 is not divisible by bn_chunks=3"):
        train_usl(_cfg(bn_chunks=3), dataset, tmp_path, device="cpu")
    with pytest.raises(ValueError, match="optimizer must be 'SGD', 'Adam' or 'AdamW'"):
        train_usl(_cfg(optimizer="LBFGS"), dataset, tmp_path, device="cpu", show_progress=False)
    with pytest.raises(FileNotFoundError, match="init checkpoint .*nope.pth does not exist"):
        train_usl(_cfg(), dataset, tmp_path, init=tmp_path / "nope.pth", device="cpu")


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_parses_and_runs_a_smoke_usl(tmp_path):
    from reid_lab.usl.cli import add_usl_parsers, run_usl_cli

    parser = argparse.ArgumentParser()
    add_usl_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["uda", "--profile", "tiny", "--source-checkpoint", "s.pth", "--dataset", "market1501",
                              "--output", "out", "--set", "eps=0.55"])
    assert (args.source_checkpoint, args.dataset, args.set) == ("s.pth", "market1501", ["eps=0.55"])
    args = parser.parse_args(["usl", "--profile", "smoke", "--dataset", "market1501", "--data-root",
                              str(tmp_path / "data"), "--output", str(tmp_path / "out"), "--no-progress",
                              "--set", "iters=1", "--device", "cpu"])
    assert run_usl_cli(args) == 0
    assert (tmp_path / "out" / "model.pth").is_file()
    assert len(engine.JsonlLog(tmp_path / "out" / "log.jsonl").read()) == resolve("usl", "smoke").epochs


# ------------------------------------------------------------------------------------------------ AdaBN (UDA option)
class _MeanColour(nn.Module):
    """A 'backbone' whose feature is each image's mean colour (3-D), through a dropout that must stay off."""

    embed_dim = 3

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(x.mean(dim=(2, 3)))


def test_adapt_bn_sets_the_neck_statistics_to_the_eval_features_of_the_images(dataset):
    from reid_lab.data import build_usl_transforms
    from reid_lab.usl import adapt_bn

    model = USLModel(_MeanColour())
    model.train()
    samples = sorted(dataset.train)
    assert adapt_bn(model, samples, _cfg(batch_size=16, bn_chunks=2), "cpu") == math.ceil(len(samples) / 8)
    transform = build_usl_transforms(64, 32, train=False)
    feats = torch.stack([transform(_open(s.path)).mean(dim=(1, 2)) for s in samples])  # no dropout: eval features
    torch.testing.assert_close(model.bottleneck.running_mean, feats.mean(0), rtol=0, atol=1e-5)
    # cumulative average of per-batch unbiased variances (8 images per batch = the BN chunk of 16 / 2)
    per_batch = torch.stack([feats[i:i + 8].var(0, unbiased=True) for i in range(0, len(feats), 8)])
    torch.testing.assert_close(model.bottleneck.running_var, per_batch.mean(0), rtol=1e-4, atol=1e-6)
    assert model.training and model.base.drop.training  # the mode is restored


def _open(path: str):
    from PIL import Image

    return Image.open(path).convert("RGB")


def test_uda_adabn_start_is_the_bn_only_baseline_and_survives_resume(dataset, tmp_path):
    from reid_lab.reid import build_reid_model, reid_checkpoint
    from reid_lab.usl import bn_only_transfer
    from reid_lab.retrieval.clustering import cluster_purity

    torch.manual_seed(7)
    source = build_reid_model("vit_tiny", num_classes=7, img_size=(64, 32))
    engine.save_checkpoint(reid_checkpoint(source.eval(), epoch=1), tmp_path / "source.pth")
    cfg = resolve("uda", "smoke", **{**vars(_cfg(epochs=2, iters=1, eval_step=1)), "adabn": True})
    baseline = bn_only_transfer(cfg, dataset, tmp_path / "source.pth", device="cpu")
    part = train_uda(cfg, dataset, tmp_path / "source.pth", tmp_path / "uda", device="cpu", show_progress=False,
                     stop_after=1)
    assert part.bn_adapted == baseline and set(baseline) >= {"mAP", "rank1"}
    record = part.history[0]
    labels = pseudo_label_epoch(None, sorted(dataset.train), cfg, "cpu",
                                features=_features_after_adabn(cfg, dataset, tmp_path / "source.pth"))
    assert record["num_clusters"] == labels.num_clusters
    assert record["purity"] == pytest.approx(cluster_purity(labels.labels, [s.pid for s in sorted(dataset.train)]))
    resumed = train_uda(cfg, dataset, tmp_path / "source.pth", tmp_path / "uda", device="cpu", show_progress=False)
    assert resumed.finished and resumed.bn_adapted == baseline
    assert engine.load_checkpoint(resumed.model_path)["bn_adapted"] == baseline
    plain = train_uda(resolve("uda", "smoke", **{**vars(cfg), "adabn": False}), dataset, tmp_path / "source.pth",
                      tmp_path / "plain", device="cpu", show_progress=False, stop_after=1)
    assert plain.bn_adapted == {} and plain.initial == part.initial


def _features_after_adabn(cfg, dataset, source):
    from reid_lab.usl import adapt_bn, extract_features_for_clustering

    engine.seed_everything(cfg.seed)
    model = build_usl_model(cfg, source)
    adapt_bn(model, sorted(dataset.train), cfg, "cpu")
    return extract_features_for_clustering(model.eval(), sorted(dataset.train), cfg.height, cfg.width, "cpu",
                                           progress=False)
