"""Calibrated verdicts (issue 19): hand-computed cases for every rule of :mod:`reid_lab.tutorial.verdicts`."""
from __future__ import annotations

import pytest

from reid_lab.tutorial.verdicts import compare_once, compare_paired, mass_verdict, training_verdict, u_turn


def test_paired_difference_beyond_the_t_interval_is_a_win():
    # diffs 10, 11, 9: mean 10, sd 1, t(0.975, 2) = 4.303 -> half-width 4.303 / sqrt(3) = 2.484
    v = compare_paired([30, 32, 31], [20, 21, 22], what="DINO vs random, mAP")
    assert v.beyond_noise and v.word == "a real gain" and v.difference == pytest.approx(10)
    assert v.text == ("DINO vs random, mAP: +10.0 ± 1.0 points over 3 paired seeds (ahead in 3/3; 95 % interval of the "
                      "mean ±2.5) — a real gain")
    loss = compare_paired([20, 21, 22], [30, 32, 31], what="x", worse="ends below")
    assert loss.beyond_noise and loss.word == "ends below"


def test_paired_difference_inside_the_seed_spread_claims_nothing():
    v = compare_paired([25, 20, 30], [20, 25, 25], what="x")  # diffs 5, -5, 5: mean 1.7, sd 5.8
    assert not v.beyond_noise and v.word == "within the seed spread: no claim either way"
    assert "ahead in 2/3" in v.text


def test_values_near_chance_are_never_a_result():
    v = compare_paired([3.0, 3.1, 3.2], [2.0, 2.1, 2.2], what="USL vs start", chance=2.0)
    assert v.near_chance and not v.beyond_noise
    assert "both are near chance (2.0 points): not a result either way" in v.text


def test_one_seed_without_a_noise_estimate_says_within_noise():
    v = compare_once(3.3, 1.9, what="USL vs start")
    assert not v.beyond_noise and "one seed, within noise" in v.text and "+1.4 points" in v.text
    assert compare_paired([3.3], [1.9], what="x").text == v.text.replace("USL vs start", "x")


def test_one_seed_against_a_known_seed_sd():
    assert compare_once(33.0, 30.0, what="x", noise_sd=1.0).beyond_noise  # 3 > 2 x 1
    within = compare_once(31.5, 30.0, what="x", noise_sd=1.0)
    assert not within.beyond_noise and within.word == "within the seed noise: no claim either way"


def test_u_turn_finds_a_loss_that_climbs_back():
    assert u_turn([5.50, 2.85, 4.33]) == (1, 2.85)  # fell 2.65, rose 1.48 > 25 % of it
    assert u_turn([5.5, 4.0, 3.0, 3.1]) is None      # rose 0.1 < 25 % of 2.5
    assert u_turn([1.0, 2.0, 3.0]) is None           # never fell
    assert u_turn([0.2, 0.8, 0.3], rising_is_bad=False) == (1, 0.8)


def test_training_verdict_flags_the_issue_run_and_accepts_a_steady_one():
    v = training_verdict([5.50, 2.85, 4.33], [0.80, 0.50, 0.75])
    assert not v.beyond_noise and v.word.startswith("U-turn")
    assert "the loss rose back after epoch 2" in v.text and "the entropy climbed 25 points back towards ln K" in v.text
    drifting = training_verdict([6.44, 6.44, 6.57], [0.58, 0.60, 0.70])  # the tiny ICS run of notebook 02
    assert drifting.word.startswith("U-turn") and "climbed 12 points" in drifting.text
    steady = training_verdict([6.0, 5.0, 4.2, 4.0], [0.8, 0.7, 0.6, 0.6])
    assert steady.word == "learning" and steady.beyond_noise
    assert training_verdict([6.0, 5.0], [0.9, 0.97]).word == "collapsing to uniform targets"
    assert training_verdict([5.0, 5.2], [0.8, 0.8]).word == "not learning yet"


def test_attention_needs_to_beat_the_positional_prior():
    model = [3.0, 3.2, 2.9, 3.1, 3.0]
    same_as_prior = mass_verdict(model, [3.0, 3.1, 3.0, 3.2, 2.9], model="fine-tuned", prior="centre prior")
    assert not same_as_prior.beyond_noise and "no more than the positional prior" in same_as_prior.text
    beyond = mass_verdict([9.0, 10.0, 11.0, 10.5, 9.5], [1.0, 1.5, 0.5, 1.2, 0.8], model="m", prior="p")
    assert beyond.beyond_noise and beyond.word == "concentrates on the person beyond the positional prior"
    none = mass_verdict([0.5, -0.5, 0.2, -0.3, 0.1], [0.0] * 5, model="m", prior="p")
    assert none.word == "does not concentrate on the person"
    with pytest.raises(ValueError):
        mass_verdict([1.0], [1.0], model="m", prior="p")


def test_numpy_inputs_are_accepted():
    import numpy as np

    assert compare_paired(np.array([30.0, 32.0, 31.0]), np.array([20.0, 21.0, 22.0]), what="x").beyond_noise
    assert mass_verdict(np.array([9.0, 10.0, 11.0]), np.array([1.0, 1.5, 0.5]), model="m", prior="p").beyond_noise
