"""asv suite: the near-lossless preset's residual layer (nkcodec.coding.nearlossless_v1) over a learned base image."""

from nkcodec.coding import nearlossless_v1


class ResidualCoding:
    params = [0, 1, 4]
    param_names = ["max_error"]

    def setup(self, d):
        import nkcodec
        from nkcodec.tools.bench import sample_images

        self.img = next(v for v in sample_images().values() if v.ndim == 3)  # a half-size Kodak sample
        self.base = nkcodec.decompress(nkcodec.compress(self.img, quality=6))  # the preset's base layer
        self.params, self.sections = nearlossless_v1.encode(self.img, self.base, d)

    def time_encode(self, d):
        nearlossless_v1.encode(self.img, self.base, d)

    def time_decode(self, d):
        nearlossless_v1.decode(self.base, self.params, self.sections)

    def track_residual_bits_per_pixel(self, d):
        return 8.0 * sum(map(len, self.sections)) / (self.img.shape[0] * self.img.shape[1])

    track_residual_bits_per_pixel.unit = "bits"
