"""Naturalness (MOS) estimators: `overall(audio, sr)` -> a score on the 1-5 MOS scale. Each names the
metrics it feeds (`prefix`): `<prefix>_ovrl` for the synthesis, `<prefix>_ref` for the recordings and
`<prefix>_ratio` between them, so a DNSMOS number is never read as a UTMOS one.

=========  ===================================================  =====================================
class      weights (role ``mos_estimator``)                     loader
=========  ===================================================  =====================================
``dnsmos`` DNSMOS P.835 + P.808 ONNX files (speechmos' wheel)     speechmos.dnsmos on onnxruntime
``utmos``  UTMOS22 strong learner, converted state dict ``.pt``  utmos-pytorch's UTMOSScoreTorch
=========  ===================================================  =====================================
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from ..core.reasons import LaneError
from .audio import resample


class MosModel:
    name = "mos"
    prefix = "mos"

    def overall(self, audio: ArrayLike, sr: int) -> float:
        raise NotImplementedError


class Dnsmos(MosModel):
    """DNSMOS (P.835 sig/bak/ovr + P.808) from speechmos' ONNX models, run with onnxruntime."""

    name = "dnsmos"
    prefix = "dnsmos"

    def __init__(self, primary: str | os.PathLike[str] | None = None, p808: str | os.PathLike[str] | None = None):
        try:
            import speechmos.dnsmos as dn

            base = Path(dn.__file__).parent / "dnsmos_models"
            self.model = dn.DNSMOS(str(primary or base / "sig_bak_ovr.onnx"), str(p808 or base / "model_v8.onnx"))
        except Exception as exc:
            raise LaneError("evaluator_unavailable", f"DNSMOS could not load: {exc}") from None

    def score(self, audio: ArrayLike, sr: int) -> dict[str, float]:
        x = np.clip(np.nan_to_num(resample(audio, sr, 16000)), -1.0, 1.0)
        if x.size < 1600:
            x = np.pad(x, (0, 1600 - x.size))
        r = self.model(x, 16000, False)
        return {"ovrl": float(r["ovrl_mos"]), "sig": float(r["sig_mos"]), "bak": float(r["bak_mos"]),
                "p808": float(r["p808_mos"])}

    def overall(self, audio: ArrayLike, sr: int) -> float:
        return self.score(audio, sr)["ovrl"]


class Utmos(MosModel):
    """UTMOS22 (strong learner) through utmos-pytorch, a fairseq-free port whose scores match the original
    system, from a local state dict. The file must hold exactly the model's tensors: utmos-pytorch loads
    with strict=False, so a wrong file would otherwise run with random weights, silently."""

    name = "utmos"
    prefix = "utmos"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            import torch
            from utmos_pytorch import UTMOSScoreTorch
            from utmos_pytorch.utmos_torch import UTMOSModel

            state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
            want = set(UTMOSModel().state_dict())
            have = set(state) if isinstance(state, dict) else set()
            if want != have:
                raise ValueError(f"not a UTMOS state dict: {len(want - have)} tensors missing, "
                                 f"{len(have - want)} unexpected")
            del state
            self.model = UTMOSScoreTorch(ckpt_path=str(path), device="cpu")
        except Exception as exc:
            raise LaneError("evaluator_unavailable", f"UTMOS could not load {path}: {type(exc).__name__}: "
                            f"{str(exc)[:200]}") from None

    def overall(self, audio: ArrayLike, sr: int) -> float:
        import torch

        x = np.clip(np.nan_to_num(resample(audio, sr, 16000)), -1.0, 1.0)
        if x.size < 1600:
            x = np.pad(x, (0, 1600 - x.size))
        return float(self.model.score(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))[0])
