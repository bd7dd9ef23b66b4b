"""Heads: DINO's projection head (docs/reference.md §2.4) and TransReID's BNNeck + ID classifier (§4.1).

Key names follow the official checkpoints so heads load and save without key surgery:

* :class:`DINOHead` — ``mlp.0``, ``mlp.2``, ``mlp.4`` (Linear layers between GELUs), ``last_layer.weight_g`` (out, 1)
  and ``last_layer.weight_v`` (out, bottleneck) (docs/reference.md §3.1). ``torch.nn.utils.weight_norm`` is deprecated and its
  replacement ``parametrizations.weight_norm`` names the tensors ``parametrizations.weight.original0/1``, so the
  weight-normalised layer is the small :class:`WeightNormLinear` with the official names.
* :class:`BNNeckHead` — ``bottleneck.{weight,bias,running_mean,running_var,num_batches_tracked}`` and
  ``classifier.weight`` (docs/reference.md §3.4, the TransReID fine-tuned layout minus the ``base.`` backbone).
"""
from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn

__all__ = ["WeightNormLinear", "DINOHead", "BNNeckHead"]


class WeightNormLinear(nn.Module):
    """Bias-free linear layer with weight normalisation: ``W = g · v / ‖v‖`` per output row (Salimans & Kingma).

    Parameters are named ``weight_g`` (out, 1) and ``weight_v`` (out, in) exactly like the tensors that
    ``nn.utils.weight_norm(nn.Linear(in, out, bias=False))`` produces (dim=0), so DINO checkpoints load as is.
    ``v`` starts as ``nn.Linear``'s default init and ``g`` as ‖v‖ (what ``weight_norm`` does); DINO then fills
    ``g`` with 1 (done by :class:`DINOHead`).
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight_v = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_g = nn.Parameter(torch.empty(out_features, 1))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight_v, a=math.sqrt(5))  # nn.Linear's default
        self.weight_g.copy_(self.weight_v.norm(dim=1, keepdim=True))

    @property
    def weight(self) -> torch.Tensor:
        """The effective (out, in) weight."""
        return self.weight_v * (self.weight_g / self.weight_v.norm(dim=1, keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class DINOHead(nn.Module):
    """DINO projection head: MLP → L2 normalisation → weight-normalised linear to ``out_dim`` prototypes (docs/reference.md §2.4).

    With the defaults: Linear(D→2048) → GELU → Linear(2048→2048) → GELU → Linear(2048→256), ℓ2-normalise,
    ``last_layer`` = weight-normalised Linear(256→65,536, no bias) whose ``weight_g`` is filled with 1 and frozen
    when ``norm_last_layer`` (the official default for student and teacher).

    Args:
        in_dim: backbone feature size D.
        out_dim: number of prototypes K.
        hidden_dim: MLP width.
        bottleneck_dim: size before the last layer.
        nlayers: number of Linear layers in the MLP (≥ 1; 1 means a single Linear, key ``mlp.weight``).
        norm_last_layer: freeze ``last_layer.weight_g`` at 1.
        use_bn: BatchNorm1d after each hidden Linear (upstream DINO option; off in the paper, which shifts
            the MLP key indices).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 65536,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        nlayers: int = 3,
        norm_last_layer: bool = True,
        use_bn: bool = False,
    ) -> None:
        super().__init__()
        if nlayers < 1:
            raise ValueError(f"nlayers must be >= 1, got {nlayers}")
        for name, v in (("in_dim", in_dim), ("out_dim", out_dim), ("hidden_dim", hidden_dim),
                        ("bottleneck_dim", bottleneck_dim)):
            if v < 1:
                raise ValueError(f"{name} must be positive, got {v}")
        if nlayers == 1:
            self.mlp: nn.Module = nn.Linear(in_dim, bottleneck_dim)
        else:
            layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim)]
            for _ in range(nlayers - 2):
                layers += [nn.BatchNorm1d(hidden_dim)] if use_bn else []
                layers += [nn.GELU(), nn.Linear(hidden_dim, hidden_dim)]
            layers += [nn.BatchNorm1d(hidden_dim)] if use_bn else []
            layers += [nn.GELU(), nn.Linear(hidden_dim, bottleneck_dim)]
            self.mlp = nn.Sequential(*layers)
        self.apply(self._init_weights)
        self.last_layer = WeightNormLinear(bottleneck_dim, out_dim)
        with torch.no_grad():
            self.last_layer.weight_g.fill_(1.0)
        self.norm_last_layer = norm_last_layer
        if norm_last_layer:
            self.last_layer.weight_g.requires_grad_(False)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mlp(x)
        x = F.normalize(x, dim=-1, p=2)
        return self.last_layer(x)


class BNNeckHead(nn.Module):
    """TransReID's BNNeck and ID classifier (docs/reference.md §4.1; Luo et al., "Bag of Tricks").

    ``bottleneck`` = BatchNorm1d(D), weight 1, bias 0 and **frozen** (``requires_grad=False``);
    ``classifier`` = Linear(D → num_classes, no bias), init N(0, 0.001).

    * training: returns ``(logits, feat)`` — logits from the post-BN feature, ``feat`` the pre-BN feature
      (for the triplet loss); ``logits`` is ``None`` when ``num_classes == 0``.
    * eval: returns the pre-BN feature (``neck_feat="before"``, what every official config uses) or the post-BN
      one (``"after"``, the TransReID default and cluster-contrast's choice).

    Args:
        in_dim: feature size D.
        num_classes: training identities (0 = no classifier).
        neck_feat: which feature eval mode returns.
    """

    def __init__(self, in_dim: int, num_classes: int, neck_feat: Literal["before", "after"] = "before") -> None:
        super().__init__()
        if neck_feat not in ("before", "after"):
            raise ValueError(f"neck_feat must be 'before' or 'after', got {neck_feat!r}")
        if in_dim < 1 or num_classes < 0:
            raise ValueError(f"need in_dim >= 1 and num_classes >= 0, got in_dim={in_dim}, num_classes={num_classes}")
        self.neck_feat = neck_feat
        self.num_classes = num_classes
        self.bottleneck = nn.BatchNorm1d(in_dim)
        nn.init.ones_(self.bottleneck.weight)
        nn.init.zeros_(self.bottleneck.bias)
        self.bottleneck.bias.requires_grad_(False)
        self.classifier = nn.Linear(in_dim, num_classes, bias=False) if num_classes > 0 else None
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor] | torch.Tensor:
        bn_feat = self.bottleneck(feat)
        if self.training:
            logits = self.classifier(bn_feat) if self.classifier is not None else None
            return logits, feat
        return feat if self.neck_feat == "before" else bn_feat
