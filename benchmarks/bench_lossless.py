"""asv suite: the predictive bounded-error coder, version 2 (nkcodec.coding.nearlossless_v2)
and version 5 (nkcodec.coding.nearlossless_v5, the near-lossless preset's default)."""

from nkcodec.coding import nearlossless_v2, nearlossless_v5

_CODERS = {2: nearlossless_v2, 5: nearlossless_v5}


class PredictiveCoding:
    params = [[2, 5], [0, 1, 4]]
    param_names = ["version", "max_error"]

    def setup(self, v, d):
        from nkcodec.tools.bench import sample_images

        self.coder = _CODERS[v]
        self.img = next(v for v in sample_images().values() if v.ndim == 3)  # a half-size Kodak sample
        self.parts = self.coder.encode(self.img, d)  # also loads the compiled kernel
        self.decode(d)

    def decode(self, d):
        return self.coder.decode(self.parts, self.img.shape, d)

    def time_encode(self, v, d):
        self.coder.encode(self.img, d)

    def time_decode(self, v, d):
        self.decode(d)

    def track_bits_per_pixel(self, v, d):
        return 8.0 * sum(map(len, self.parts)) / (self.img.shape[0] * self.img.shape[1])

    track_bits_per_pixel.unit = "bits"

    def track_max_error(self, v, d):
        return int(abs(self.decode(d).astype(int) - self.img.astype(int)).max())

    track_max_error.unit = "levels"
