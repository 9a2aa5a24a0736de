"""asv suite: the predictive bounded-error coder (nkcodec.coding.nearlossless_v2, the near-lossless preset's version 2)."""

from nkcodec.coding import nearlossless_v2


class PredictiveCoding:
    params = [0, 1, 4]
    param_names = ["max_error"]

    def setup(self, d):
        from nkcodec.tools.bench import sample_images

        self.img = next(v for v in sample_images().values() if v.ndim == 3)  # a half-size Kodak sample
        self.parts = nearlossless_v2.encode(self.img, d)  # also loads the compiled kernel
        nearlossless_v2.decode(self.parts, self.img.shape, d)

    def time_encode(self, d):
        nearlossless_v2.encode(self.img, d)

    def time_decode(self, d):
        nearlossless_v2.decode(self.parts, self.img.shape, d)

    def track_bits_per_pixel(self, d):
        return 8.0 * sum(map(len, self.parts)) / (self.img.shape[0] * self.img.shape[1])

    track_bits_per_pixel.unit = "bits"

    def track_max_error(self, d):
        out = nearlossless_v2.decode(self.parts, self.img.shape, d)
        return int(abs(out.astype(int) - self.img.astype(int)).max())

    track_max_error.unit = "levels"
