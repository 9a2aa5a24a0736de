"""asv suite: palette k-means (FAISS, k-means++ seeded) against scikit-learn on the same pixels."""

import numpy as np

from nkcodec import metrics
from nkcodec.coding import kmeans


def _image(seed=0, h=256, w=384):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 0.6, y * 0.9, (x + y) * 0.3], -1) + rng.normal(0, 12, (h, w, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


class PaletteKMeans:
    params = [16, 64, 256]
    param_names = ["k"]

    def setup(self, k):
        self.img = _image()
        self.pix = self.img.reshape(-1, 3).astype(np.float32)
        kmeans.fit(self.pix[:1000], 4)  # load FAISS
        try:
            from sklearn.cluster import KMeans

            self.KMeans = KMeans
        except ImportError:
            self.KMeans = None

    def time_faiss_fit(self, k):
        kmeans.fit(self.pix, k)

    def time_sklearn_fit(self, k):
        if self.KMeans is None:
            raise NotImplementedError("scikit-learn not installed")
        self.KMeans(n_clusters=k, n_init=1, init="k-means++", random_state=0).fit(self.pix)

    def time_palette_fit(self, k):
        kmeans.palette_fit(self.img, k)

    def track_palette_psnr(self, k):
        pal = kmeans.palette_fit(self.img, k)
        return metrics.psnr(self.img, pal[kmeans.palette_apply(self.img, pal)])

    track_palette_psnr.unit = "dB"
