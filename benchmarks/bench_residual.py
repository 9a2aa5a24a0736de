"""asv suite: the near-lossless preset's residual layer (nkcodec.residual) over a learned base image."""

from nkcodec import residual


class ResidualCoding:
    params = [0, 1, 4]
    param_names = ["max_error"]

    def setup(self, d):
        import nkcodec
        from nkcodec.bench import sample_images

        self.img = next(v for v in sample_images().values() if v.ndim == 3)  # a half-size Kodak sample
        self.base = nkcodec.decompress(nkcodec.compress(self.img, quality=6))  # the preset's base layer
        self.params, self.sections = residual.encode(self.img, self.base, d)

    def time_encode(self, d):
        residual.encode(self.img, self.base, d)

    def time_decode(self, d):
        residual.decode(self.base, self.params, self.sections)

    def track_residual_bits_per_pixel(self, d):
        return 8.0 * sum(map(len, self.sections)) / (self.img.shape[0] * self.img.shape[1])

    track_residual_bits_per_pixel.unit = "bits"
