"""ONNX export of a backbone's feature extractor, with a parity check against PyTorch (docs/reference.md §12.5).

The exported graph maps ``images`` (B, 3, H, W) — already resized and normalised exactly as for PyTorch
inference — to ``features`` (B, D), the CLS token after the final LayerNorm (eval mode: BatchNorm of the ICS stem
uses its running statistics). The batch dimension is dynamic; H and W are fixed at export time.

Parity is checked on a random batch of a *different* size than the one traced, with ``onnxruntime`` when it is
installed and otherwise with ONNX's pure-Python reference evaluator (``onnx.reference.ReferenceEvaluator``).
"""
from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["export_onnx", "run_onnx"]


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the exporter's INFO chatter (one line per graph pass) and the legacy exporter's tracer warnings."""
    names = ("onnx_ir", "onnxscript", "torch.onnx")
    levels = {n: logging.getLogger(n).level for n in names}
    try:
        for n in names:
            logging.getLogger(n).setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            warnings.filterwarnings("ignore", message=".*instance_norm.*train=True.*")
            warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
            yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


def run_onnx(path: str | os.PathLike, images: np.ndarray) -> tuple[np.ndarray, str]:
    """Run an exported model on ``images`` (float32 NCHW); returns (features, name of the runtime used)."""
    try:
        import onnxruntime as ort  # optional

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: images})[0], f"onnxruntime {ort.__version__}"
    except ImportError:
        from onnx.reference import ReferenceEvaluator

        sess = ReferenceEvaluator(str(path))
        return sess.run(None, {"images": images})[0], "onnx.reference.ReferenceEvaluator"


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    img_size: tuple[int, int] | None = None,
    opset: int = 18,
    *,
    dynamo: bool = True,
    check_batch: int = 3,
    seed: int = 0,
) -> float:
    """Export ``model`` (eval mode) to ``path`` and return the max |ONNX − PyTorch| over a random check batch.

    Args:
        model: a backbone (``model(x)`` → (B, D)); its train/eval mode is restored afterwards.
        path: output ``.onnx`` file (parent directories are created).
        img_size: (height, width) of the inputs; ``None`` = the model's construction size.
        opset: ONNX opset (18 is the lowest the ``torch.export`` exporter implements natively).
        dynamo: use ``torch.onnx.export(dynamo=True)`` (the maintained exporter); ``False`` = the legacy
            TorchScript exporter.
        check_batch: batch size of the parity check (differs from the traced batch of 2 on purpose, to exercise
            the dynamic batch axis).
        seed: seed of the random check images.

    Returns:
        The maximum absolute difference between ONNX and PyTorch features (also logged).
    """
    if img_size is None:
        img_size = tuple(model.patch_embed.img_size)
    h, w = img_size
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        g = torch.Generator().manual_seed(seed)
        example = torch.randn(2, 3, h, w, generator=g).to(device)
        kwargs = dict(input_names=["images"], output_names=["features"], opset_version=opset)
        with torch.no_grad(), _quiet_exporter():
            if dynamo:
                batch = torch.export.Dim("batch", min=1, max=4096)
                torch.onnx.export(model, (example,), str(path), dynamo=True, dynamic_shapes=({0: batch},),
                                  external_data=False, verbose=False, **kwargs)
            else:
                torch.onnx.export(model, (example,), str(path), dynamo=False,
                                  dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}}, **kwargs)
            check = torch.randn(check_batch, 3, h, w, generator=g)
            ref = model(check.to(device)).float().cpu().numpy()
        out, runtime = run_onnx(path, check.numpy())
    finally:
        model.train(was_training)
    if out.shape != ref.shape:
        raise RuntimeError(f"ONNX output shape {out.shape} differs from PyTorch {ref.shape} for {path}")
    diff = float(np.abs(out - ref).max())
    logger.info("exported %s (%dx%d, opset %d) to %s; max |ONNX - PyTorch| = %.3g (%s, batch %d)",
                getattr(model, "arch", type(model).__name__), h, w, opset, path, diff, runtime, check_batch)
    return diff
