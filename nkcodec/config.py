"""The nets' hyper-parameters, the quality ladder and the machine's core count,
importable without JAX or Flax (a decoder that only needs the exact synthesis never
imports Flax)."""

from __future__ import annotations

import dataclasses
import os

__all__ = ["NetConfig", "ModelConfig", "LAMBDAS", "NUM_QUALITIES", "QUALITIES", "LATENT_STRIDE", "cpu_count"]

NUM_QUALITIES = 8
QUALITIES = range(1, NUM_QUALITIES + 1)  # the quality settings, 1 (lowest rate) .. 8
LATENT_STRIDE = 16  # image pixels per latent position, each way (the nets' total stride)
# Rate-distortion trade-offs per quality (MSE on [0,1] images, times 255**2),
# the same ladder as CompressAI's bmshj2018-factorized.
LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)


@dataclasses.dataclass(frozen=True)
class NetConfig:
    """Architecture hyper-parameters (stored with the weights)."""

    n: int = 64  # hidden channels
    m: int = 192  # latent channels
    kernel_a: int = 5  # analysis kernel (stride 2)
    kernel_s: int = 3  # synthesis sub-pixel conv kernel
    activation: str = "gdn"  # "gdn" (simplified GDN, Johnston et al. 2019) or "relu"
    filters: tuple = (3, 3, 3)  # factorized prior density-net widths
    # One factorized prior per quality (True) or one shared by all qualities
    # (False, the nk64-1 model).  A shared prior has to cover the latents of
    # every gain at once: at quality 1 it cost ~30% more bits than an adapted one.
    prior_per_quality: bool = False

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["filters"] = list(self.filters)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> NetConfig:
        d = dict(d)
        d["filters"] = tuple(d.get("filters", (3, 3, 3)))
        d.setdefault("prior_per_quality", False)
        return cls(**d)


ModelConfig = NetConfig  # its name in 0.2


def cpu_count() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
