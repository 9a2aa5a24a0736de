"""asv suite: the batched pipeline (``encode_many`` / ``decode_many``) against
one image at a time with the same codec, over eight Kodak-sized images."""

import nkcodec

from .bench_autoencoder import photo_like

N = 8


class Batched:
    params = [["one-at-a-time", "batched"]]
    param_names = ["mode"]

    def setup(self, mode):
        self.images = [photo_like(seed=i) if i % 2 else photo_like(768, 512, seed=i) for i in range(N)]
        self.codec = nkcodec.Codec(4)
        self.streams = [self.codec.encode(im) for im in self.images]  # compiles both sizes
        list(self.codec.decode_many(self.streams))
        list(self.codec.encode_many(self.images))

    def time_encode(self, mode):
        if mode == "batched":
            list(self.codec.encode_many(self.images))
        else:
            [self.codec.encode(im) for im in self.images]

    def time_decode(self, mode):
        if mode == "batched":
            list(self.codec.decode_many(self.streams))
        else:
            [self.codec.decode(s) for s in self.streams]
