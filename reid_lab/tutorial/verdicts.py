"""Calibrated verdicts: every sentence a notebook prints about a comparison is generated from the numbers and says
what noise it was judged against.

A toy-scale difference means something only against the spread of the thing measured. The rules, used by every
notebook:

* **Paired seeds** (:func:`compare_paired`): the difference counts when the 95 % t-interval of the mean paired
  difference excludes 0 (n seeds, n − 1 degrees of freedom; with 3 seeds that needs ``|mean| > 2.48 sd``).
* **One seed** (:func:`compare_once`): with a noise estimate from elsewhere (e.g. the seed sd of a multi-seed study of
  the same setting) the difference counts when it exceeds twice that sd; without one the verdict says "one seed,
  within noise" and never claims a winner.
* **Near chance**: when both values are below twice the chance level, the verdict says so: a difference between two
  near-chance numbers is not a result whatever its sign.
* **Training curves** (:func:`training_verdict`): a DINO run is "learning" only when its loss fell without turning
  back up and the teacher entropy has not climbed back towards ln K; a U-turn of either is named with its numbers.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

__all__ = ["Verdict", "compare_once", "compare_paired", "mass_verdict", "training_verdict", "u_turn"]

CONFIDENCE = 0.95
ONE_SEED_FACTOR = 2.0  # a single run's difference counts beyond this many seed sds of the setting
CHANCE_FACTOR = 2.0    # values below this many times chance are "near chance"


@dataclass(frozen=True)
class Verdict:
    """A judged difference ``a − b`` (in the caller's unit): ``beyond_noise`` is True when the rule of the module
    docstring says the difference is real; ``word`` is the verb phrase for a sentence; ``text`` the full sentence."""

    difference: float
    beyond_noise: bool
    word: str
    text: str
    near_chance: bool = False

    def __str__(self) -> str:
        return self.text


def _near_chance(a: float, b: float, chance: float | None) -> bool:
    return chance is not None and max(a, b) < CHANCE_FACTOR * chance


def _chance_note(near: bool, chance: float | None, unit: str) -> str:
    return f"; both are near chance ({chance:.1f}{unit}): not a result either way" if near else ""


def compare_paired(a: Sequence[float], b: Sequence[float], *, what: str, better: str = "a real gain",
                   worse: str = "a real loss", unit: str = " points", chance: float | None = None,
                   noise_sd: float | None = None) -> Verdict:
    """``a`` against ``b``, paired by seed (``a[i]`` and ``b[i]`` share seed i): mean ± sd of the differences and the
    95 % t-interval of their mean. ``what`` names the comparison, e.g. ``"DINO+ICS vs random+ICS, mAP"``. With a
    single pair this is :func:`compare_once` (``noise_sd`` then gives its noise estimate)."""
    a, b = [float(x) for x in a], [float(x) for x in b]
    if len(a) != len(b) or not a:
        raise ValueError(f"paired values need the same non-zero length, got {len(a)} and {len(b)}")
    diffs = [x - y for x, y in zip(a, b)]
    n, mean = len(diffs), statistics.fmean(diffs)
    near = _near_chance(statistics.fmean(a), statistics.fmean(b), chance)
    if n == 1:
        return compare_once(a[0], b[0], what=what, better=better, worse=worse, unit=unit, chance=chance,
                            noise_sd=noise_sd)
    sd = statistics.stdev(diffs)
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * sd / math.sqrt(n)
    beyond = abs(mean) > half and not near
    word = (better if mean > 0 else worse) if beyond else "within the seed spread: no claim either way"
    wins = sum(d > 0 for d in diffs)
    text = (f"{what}: {mean:+.1f} ± {sd:.1f}{unit} over {n} paired seeds (ahead in {wins}/{n}; 95 % interval of the "
            f"mean ±{half:.1f}) — {word}" + _chance_note(near, chance, unit))
    return Verdict(mean, beyond, word, text, near)


def compare_once(a: float, b: float, *, what: str, noise_sd: float | None = None, better: str = "a real gain",
                 worse: str = "a real loss", unit: str = " points", chance: float | None = None) -> Verdict:
    """One run of each: ``a − b`` judged against ``noise_sd`` (a seed sd of the same setting measured elsewhere) when
    given, else reported as "one seed, within noise"."""
    diff = a - b
    near = _near_chance(a, b, chance)
    if noise_sd is None:
        beyond, word = False, "one seed, within noise: no claim either way"
        noise = "one seed, no noise estimate"
    else:
        beyond = abs(diff) > ONE_SEED_FACTOR * noise_sd and not near
        word = (better if diff > 0 else worse) if beyond else "within the seed noise: no claim either way"
        noise = f"one seed; noise: {ONE_SEED_FACTOR:g} × the setting's seed sd {noise_sd:.1f}{unit}"
    text = f"{what}: {diff:+.1f}{unit} ({noise}) — {word}" + _chance_note(near, chance, unit)
    return Verdict(diff, beyond, word, text, near)


def u_turn(values: Sequence[float], *, rising_is_bad: bool = True, tolerance: float = 0.25) -> tuple[int, float] | None:
    """``(index, value)`` of the turning point when a curve that should fall (``rising_is_bad``) rises back from its
    minimum by more than ``tolerance`` of the distance it fell (or, mirrored, a curve that should rise falls back);
    ``None`` when it does not turn."""
    if len(values) < 3:
        return None
    sign = 1.0 if rising_is_bad else -1.0
    v = [sign * x for x in values]
    i = min(range(len(v)), key=v.__getitem__)
    fell, back = v[0] - v[i], v[-1] - v[i]
    return (i, values[i]) if fell > 0 and back > tolerance * fell else None


def training_verdict(losses: Sequence[float], entropy_share: Sequence[float], *, entropy_rise: float = 0.10
                     ) -> Verdict:
    """A DINO run's health from its per-epoch (or smoothed per-step) loss and teacher entropy as a share of ln K.

    "collapsing to uniform targets" when the final entropy share is ≥ 0.95; "U-turn" when the loss climbs back
    (:func:`u_turn`) or the entropy ends more than ``entropy_rise`` (a share of ln K) above its minimum — drifting
    back towards uniform targets; "learning" when the loss fell and neither turned; otherwise "not learning yet"."""
    loss_turn = u_turn(losses)
    share, lowest = entropy_share[-1], min(entropy_share)
    entropy_turn = share - lowest > entropy_rise
    first, last = losses[0], losses[-1]
    if share >= 0.95:
        word, ok = "collapsing to uniform targets", False
    elif loss_turn or entropy_turn:
        word, ok = "U-turn: not learning steadily", False
    elif last < first:
        word, ok = "learning", True
    else:
        word, ok = "not learning yet", False
    parts = [f"loss {first:.2f} → {min(losses):.2f} (min) → {last:.2f}",
             f"teacher entropy {100 * entropy_share[0]:.0f} → {100 * lowest:.0f} (min) → {100 * share:.0f} % of ln K"]
    if loss_turn:
        parts.append(f"the loss rose back after epoch {loss_turn[0] + 1}")
    if entropy_turn:
        parts.append(f"the entropy climbed {100 * (share - lowest):.0f} points back towards ln K")
    return Verdict(last - first, ok, word, f"{word} ({'; '.join(parts)})")


def mass_verdict(model_gain: Sequence[float], prior_gain: Sequence[float], *, model: str, prior: str) -> Verdict:
    """Attention on the person beyond its area (``mass − area`` per image, in points) for ``model`` against the same
    quantity of a positional ``prior`` on the same images (paired): concentrates on the person only when it beats
    both 0 and the prior beyond the 95 % interval."""
    model_gain, prior_gain = [float(x) for x in model_gain], [float(x) for x in prior_gain]
    n = len(model_gain)
    if n < 2 or len(prior_gain) != n:
        raise ValueError("mass_verdict needs the same ≥ 2 images for the model and the prior")
    mean = statistics.fmean(model_gain)
    half0 = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * statistics.stdev(model_gain) / math.sqrt(n)
    versus = compare_paired(model_gain, prior_gain, what=f"{model} − {prior}, mass − area")
    above_uniform = mean - half0 > 0
    beyond = above_uniform and versus.beyond_noise and versus.difference > 0
    if beyond:
        word = "concentrates on the person beyond the positional prior"
    elif above_uniform:
        word = "puts more than uniform attention on the person, but no more than the positional prior does"
    else:
        word = "does not concentrate on the person"
    text = (f"{model}: mass − area {mean:+.1f} ± {half0:.1f} points (95 % interval over {n} images); "
            f"{prior}: {statistics.fmean(prior_gain):+.1f}. Its attention {word}.")
    return Verdict(mean, beyond, word, text)
