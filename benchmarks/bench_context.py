"""asv suite: context coding of a latent (the default preset's entropy stage), per context model version."""

import numpy as np

from nkcodec import zoo
from nkcodec.coding import context


def _latent(m, quality):
    """The latent of a shipped half-size Kodak sample (real statistics; a synthetic image would be too easy)."""
    from nkcodec.tools.bench import sample_images

    img = next(v for v in sample_images().values() if v.ndim == 3)
    return m.encode_latent(img, quality)


class ContextCoding:
    params = ([1, 2], [1, 4, 8])
    param_names = ["version", "quality"]

    def setup(self, version, q):
        m = zoo.load_model()
        self.ct = m.context_tables(q, version)
        self.y = _latent(m, q)
        self.params, self.sections = context.code_latent(self.ct, self.y)
        context.decode_latent(self.ct, self.params, self.sections, self.y.shape[:2])  # compile

    def time_encode(self, version, q):
        context.code_latent(self.ct, self.y)

    def time_decode(self, version, q):
        context.decode_latent(self.ct, self.params, self.sections, self.y.shape[:2])

    def track_bits_per_latent_value(self, version, q):
        return 8.0 * sum(map(len, self.sections)) / np.prod(self.y.shape)

    track_bits_per_latent_value.unit = "bits"
