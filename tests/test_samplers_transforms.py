"""Samplers (docs/reference.md §4.3, §5.4) and transforms (§4.3, §5.4, §9.10, §9.11); expectations computed by hand."""
from __future__ import annotations

import random
from collections import Counter

import pytest
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode

from reid_lab.data import (
    DistributedRandomIdentitySampler, ImageDataset, RandomIdentitySampler, RandomMultipleGallerySampler, Sample,
    build_reid_transforms, build_usl_transforms,
)
from reid_lab.data.transforms import MeanRandomErasing, usl_erase_fill

# identity 100+i has i+1 images (1..10); cameras cycle 0,1,2
SIZES = list(range(1, 11))
RECORDS = [Sample(f"img_{100 + i}_{j}.jpg", 100 + i, j % 3) for i, n in enumerate(SIZES) for j in range(n)]
PID_OF = [s.pid for s in RECORDS]


def _batches(indices: list[int], size: int) -> list[list[int]]:
    return [indices[i : i + size] for i in range(0, len(indices), size)]


# ----------------------------------------------------------------------------------------------------------------------
# RandomIdentitySampler
# ----------------------------------------------------------------------------------------------------------------------
def test_identity_sampler_pk_contract() -> None:
    # K=4, P=2. Chunks: ids with 1..7 images -> 1 chunk each (7); 8, 9, 10 images -> 2 chunks each (6): 13 chunks.
    sampler = RandomIdentitySampler(RECORDS, batch_size=8, num_instances=4, seed=3)
    assert sampler.official_length() == 13 * 4
    for epoch in range(20):
        sampler.set_epoch(epoch)
        indices = list(sampler)
        assert len(indices) == len(sampler)
        # stops once fewer than P=2 ids have chunks: at most one id is left, with at most 2 chunks
        assert len(indices) in (52, 48, 44)
        for batch in _batches(indices, 8):
            chunks = [batch[:4], batch[4:]]
            pids = [{PID_OF[i] for i in c} for c in chunks]
            assert all(len(p) == 1 for p in pids) and pids[0] != pids[1]  # P distinct ids x K images
        counts = Counter(indices)
        unfinished = 0
        for i, n in enumerate(SIZES):
            own = [j for j, s in enumerate(RECORDS) if s.pid == 100 + i]
            used = sum(counts[j] for j in own)
            if n >= 4:  # shuffled without replacement: each image at most once per epoch
                assert all(counts[j] <= 1 for j in own)
            assert used in (0, 4, 8)  # whole chunks; ids with < 4 images are padded to one chunk
            unfinished += used < 4 * (max(n, 4) // 4)
        assert unfinished <= 1  # only the last identity standing can keep unused chunks


def test_identity_sampler_determinism() -> None:
    a = RandomIdentitySampler(RECORDS, 8, 4, seed=11)
    b = RandomIdentitySampler(RECORDS, 8, 4, seed=11)
    a.set_epoch(2), b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)
    assert list(RandomIdentitySampler(RECORDS, 8, 4, seed=12)) != list(RandomIdentitySampler(RECORDS, 8, 4, seed=11))
    # without set_epoch the epoch advances after each iter(): epoch 0, then epoch 1
    c = RandomIdentitySampler(RECORDS, 8, 4, seed=11)
    first, second = list(c), list(c)
    a.set_epoch(0)
    assert first == list(a)
    a.set_epoch(1)
    assert second == list(a)
    torch.manual_seed(5)
    d = RandomIdentitySampler(RECORDS, 8, 4)
    torch.manual_seed(5)
    assert list(RandomIdentitySampler(RECORDS, 8, 4)) == list(d)


def test_identity_sampler_bad_arguments() -> None:
    with pytest.raises(ValueError, match="multiple of num_instances"):
        RandomIdentitySampler(RECORDS, batch_size=10, num_instances=4)
    with pytest.raises(ValueError, match="at least P=16 identities"):
        RandomIdentitySampler(RECORDS, batch_size=64, num_instances=4)


def test_identity_sampler_accepts_image_dataset() -> None:
    sampler = RandomIdentitySampler(ImageDataset(RECORDS), 8, 4, seed=0)
    assert sampler.pids == [100 + i for i in range(10)]


@pytest.mark.parametrize("world", [2, 4])
def test_distributed_union_equals_single_process(world: int) -> None:
    single = RandomIdentitySampler(RECORDS, batch_size=8, num_instances=2, seed=7)
    ranks = [DistributedRandomIdentitySampler(RECORDS, 8, 2, num_replicas=world, rank=r, seed=7)
             for r in range(world)]
    for epoch in (0, 1):
        single.set_epoch(epoch)
        for r in ranks:
            r.set_epoch(epoch)
        full = list(single)
        parts = [list(r) for r in ranks]
        assert all(len(p) == len(full) // world == len(r) for p, r in zip(parts, ranks))
        mini = 8 // world
        for b, batch in enumerate(_batches(full, 8)):
            blocks = [p[b * mini : (b + 1) * mini] for p in parts]
            assert sum(blocks, []) == batch  # rank r holds the r-th block of each global batch
            for block in blocks:  # whole K=2 chunks of one identity each
                assert all(PID_OF[block[i]] == PID_OF[block[i + 1]] for i in range(0, mini, 2))


def test_distributed_bad_arguments() -> None:
    with pytest.raises(ValueError, match="divisible by num_replicas"):
        DistributedRandomIdentitySampler(RECORDS, 8, 4, num_replicas=4, rank=0)
    with pytest.raises(ValueError, match="rank 2"):
        DistributedRandomIdentitySampler(RECORDS, 8, 2, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas and rank"):
        DistributedRandomIdentitySampler(RECORDS, 8, 2)


# ----------------------------------------------------------------------------------------------------------------------
# RandomMultipleGallerySampler
# ----------------------------------------------------------------------------------------------------------------------
GALLERY_RECORDS = (
    [Sample(f"a{j}", 0, c) for j, c in enumerate([0, 0, 1, 1, 2])]  # id 0: cams 0,0,1,1,2
    + [Sample(f"b{j}", 1, 0) for j in range(3)]  # id 1: one camera
    + [Sample("c0", 2, 1)]  # id 2: singleton
    + [Sample(f"o{j}", -1, 0) for j in range(4)]  # DBSCAN outliers
)


def test_multiple_gallery_sampler() -> None:
    sampler = RandomMultipleGallerySampler(GALLERY_RECORDS, num_instances=4, seed=0)
    anchors_seen = set()
    for epoch in range(30):
        sampler.set_epoch(epoch)
        indices = list(sampler)
        assert len(indices) == len(sampler) == 4 + 4 + 1  # singleton contributes one image
        recs = [GALLERY_RECORDS[i] for i in indices]
        assert all(r.pid >= 0 for r in recs)
        groups: dict[int, list[Sample]] = {}
        for r in recs:
            groups.setdefault(r.pid, []).append(r)
        runs = [recs[0].pid] + [b.pid for a, b in zip(recs, recs[1:]) if a.pid != b.pid]
        assert sorted(runs) == [0, 1, 2]  # each id is one contiguous run: anchor first, then its K-1
        a0, *rest0 = groups[0]
        anchors_seen.add(a0.camid)
        assert all(r.camid != a0.camid for r in rest0)  # other cameras preferred
        if a0.camid == 2:  # 4 other-camera images >= K: drawn without replacement
            assert len({r.path for r in rest0}) == 3
        if a0.camid == 0:  # only 3 other-camera images < K: with replacement, within those 3
            assert {r.path for r in rest0} <= {"a2", "a3", "a4"}
        a1, *rest1 = groups[1]
        assert len(rest1) == 3 and all(r.path != a1.path for r in rest1)  # same camera, other images
    assert anchors_seen == {0, 1, 2}


# ----------------------------------------------------------------------------------------------------------------------
# Transforms
# ----------------------------------------------------------------------------------------------------------------------
def _image(w: int, h: int, seed: int = 0) -> Image.Image:
    g = torch.Generator().manual_seed(seed)
    return Image.fromarray(torch.randint(0, 256, (h, w, 3), dtype=torch.uint8, generator=g).numpy())


def test_eval_transform_is_deterministic_and_normalised() -> None:
    tf = build_reid_transforms(32, 16, train=False)
    img = _image(20, 50)
    out = tf(img)
    assert out.shape == (3, 32, 16) and out.dtype == torch.float32
    assert torch.equal(out, tf(img))
    assert out.min() >= -1 and out.max() <= 1
    white = tf(Image.new("RGB", (7, 9), (255, 255, 255)))
    black = tf(Image.new("RGB", (7, 9), (0, 0, 0)))
    assert torch.allclose(white, torch.ones_like(white)) and torch.allclose(black, -torch.ones_like(black))
    # (x/255 - 0.5)/0.5 for a uniform 51-grey image = -0.6
    assert torch.allclose(tf(Image.new("RGB", (7, 9), (51, 51, 51))), torch.full((3, 32, 16), -0.6), atol=1e-6)


def test_interpolation_choices() -> None:
    def resize_mode(tf):
        return tf.transforms[0].interpolation

    assert resize_mode(build_reid_transforms(8, 4, train=False)) == InterpolationMode.BILINEAR  # docs/reference.md §9.10
    assert resize_mode(build_reid_transforms(8, 4, train=True)) == InterpolationMode.BICUBIC
    assert resize_mode(build_reid_transforms(8, 4, train=False, test_interpolation="bicubic")) == \
        InterpolationMode.BICUBIC
    assert resize_mode(build_usl_transforms(8, 4, train=False)) == InterpolationMode.BICUBIC
    with pytest.raises(ValueError, match="interpolation"):
        build_reid_transforms(8, 4, train=False, test_interpolation="lanczos3")


def test_train_transform_flip_and_shapes() -> None:
    img = _image(16, 32, seed=1)  # already at the target size: Resize is the identity
    evaluate = build_reid_transforms(32, 16, train=False)
    flip_only = build_reid_transforms(32, 16, train=True, flip_p=1.0, padding=0, erase_p=0.0)
    assert torch.equal(flip_only(img), torch.flip(evaluate(img), dims=[2]))
    full = build_reid_transforms(32, 16, train=True)
    random.seed(0), torch.manual_seed(0)
    outs = [full(img) for _ in range(8)]
    assert all(o.shape == (3, 32, 16) for o in outs)
    assert len({o.sum().item() for o in outs}) > 1  # random
    no_erase = build_reid_transforms(32, 16, train=True, erase_p=0.0)
    assert all(-1 <= no_erase(img).min() and no_erase(img).max() <= 1 for _ in range(5))


def test_reid_erasing_uses_timm_pixel_noise() -> None:
    tf = build_reid_transforms(64, 32, train=True, flip_p=0.0, padding=0, erase_p=1.0)
    grey = Image.new("RGB", (32, 64), (127, 127, 127))
    random.seed(1), torch.manual_seed(1)
    out = tf(grey)
    base = (127 / 255 - 0.5) / 0.5
    changed = (out - base).abs() > 1e-6
    assert changed.any()
    assert out[changed].std() > 0.5  # per-pixel N(0, 1) noise, not a constant fill


def test_usl_erase_fill_values() -> None:
    assert usl_erase_fill("mean") == pytest.approx((-0.03, -0.088, -0.188))  # (m - 0.5) / 0.5
    assert usl_erase_fill("official") == (0.485, 0.456, 0.406)
    assert usl_erase_fill("zero") == (0.0, 0.0, 0.0)
    assert usl_erase_fill((1, 2, 3)) == (1.0, 2.0, 3.0)
    with pytest.raises(ValueError):
        usl_erase_fill("imagenet")


def test_mean_random_erasing_box_and_distribution() -> None:
    erase = MeanRandomErasing(p=1.0, fill=(0.1, 0.2, 0.3))
    torch.manual_seed(0)
    tall = 0
    for _ in range(300):
        out = erase(torch.zeros(3, 100, 100))
        mask = out[0] != 0
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        h, w = len(rows), len(cols)
        assert mask.sum() == h * w  # one rectangle
        assert 0.015 <= h * w / 100**2 <= 0.43  # area in [sl, sh] = [0.02, 0.4] up to rounding of h, w
        assert torch.all(out[:, mask] == torch.tensor([0.1, 0.2, 0.3]).view(3, 1))
        tall += h > w
    # aspect ratio uniform in [0.3, 3.33]: P(h > w) = (3.33 - 1) / (3.33 - 0.3) = 0.77 (log-uniform would be 0.5)
    assert 0.65 < tall / 300 < 0.88
    assert torch.equal(MeanRandomErasing(p=0.0)(torch.ones(3, 8, 4)), torch.ones(3, 8, 4))


def test_usl_train_transform() -> None:
    tf = build_usl_transforms(32, 16, train=True, erase_fill="official")
    assert isinstance(tf.transforms[-1], MeanRandomErasing) and tf.transforms[-1].fill == (0.485, 0.456, 0.406)
    torch.manual_seed(0)
    assert tf(_image(20, 50)).shape == (3, 32, 16)
    test = build_usl_transforms(32, 16, train=False)
    assert torch.equal(test(_image(20, 50)), test(_image(20, 50)))
