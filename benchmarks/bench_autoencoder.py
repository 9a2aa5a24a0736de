"""asv suite: jitted analysis/synthesis transforms and the whole learned codec."""

import numpy as np

import nkcodec
from nkcodec import metrics, zoo


def photo_like(h=512, w=768, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 0.3, y * 0.4, (x + y) * 0.15], -1) + rng.normal(0, 10, (h, w, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


class Autoencoder:
    params = [1, 4, 8]
    param_names = ["quality"]

    def setup(self, q):
        self.img = photo_like()
        self.m = zoo.load_model()
        self.y = self.m.encode_latent(self.img, q)  # compile
        self.m.decode_latent(self.y, q, self.img.shape[:2])
        self.data = nkcodec.compress(self.img, quality=q)
        nkcodec.decompress(self.data)

    def time_encode_latent(self, q):
        self.m.encode_latent(self.img, q)

    def time_decode_latent(self, q):
        self.m.decode_latent(self.y, q, self.img.shape[:2])

    def time_compress(self, q):
        nkcodec.compress(self.img, quality=q)

    def time_decompress(self, q):
        nkcodec.decompress(self.data)

    def track_bpp(self, q):
        return metrics.bpp(self.data, self.img)

    track_bpp.unit = "bpp"

    def track_psnr(self, q):
        return metrics.psnr(self.img, nkcodec.decompress(self.data))

    track_psnr.unit = "dB"


class ExactSynthesis:
    """The bit-exact synthesis of the same weights: float32 GEMMs (fixed-point v2,
    the default ``nk64-5x``) against float64 (v1, ``nk64-5``), and the float32
    synthesis that neither is bound to."""

    params = [["float32-exact", "float64-exact", "float32"]]
    param_names = ["arithmetic"]

    def setup(self, arithmetic):
        self.img = photo_like()
        name = {"float32-exact": "nk64-5x", "float64-exact": "nk64-5", "float32": "nk64-5x"}[arithmetic]
        self.m = zoo.load_model(name)
        self.y = self.m.encode_latent(self.img, 4)
        decode = self.m.decode_latent_float32 if arithmetic == "float32" else self.m.decode_latent
        self.run = lambda: decode(self.y, 4, self.img.shape[:2])
        self.run()  # compile

    def time_synthesis(self, arithmetic):
        self.run()
