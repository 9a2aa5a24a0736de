"""asv suite: the predictive bounded-error coder (nkcodec.lossless, the near-lossless preset's version 2)."""

from nkcodec import lossless


class PredictiveCoding:
    params = [0, 1, 4]
    param_names = ["max_error"]

    def setup(self, d):
        from nkcodec.bench import sample_images

        self.img = next(v for v in sample_images().values() if v.ndim == 3)  # a half-size Kodak sample
        self.parts = lossless.encode(self.img, d)  # also loads the compiled kernel
        lossless.decode(self.parts, self.img.shape, d)

    def time_encode(self, d):
        lossless.encode(self.img, d)

    def time_decode(self, d):
        lossless.decode(self.parts, self.img.shape, d)

    def track_bits_per_pixel(self, d):
        return 8.0 * sum(map(len, self.parts)) / (self.img.shape[0] * self.img.shape[1])

    track_bits_per_pixel.unit = "bits"

    def track_max_error(self, d):
        out = lossless.decode(self.parts, self.img.shape, d)
        return int(abs(out.astype(int) - self.img.astype(int)).max())

    track_max_error.unit = "levels"
