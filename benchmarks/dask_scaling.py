"""Throughput of coding a folder on a dask LocalCluster of 1 and 2 worker
processes against the plain (in-process, batched) path, steady state: the
cluster is started and every worker has loaded the model and compiled before
the clock starts, as the plain path has.  Wall time of whole commands (start-up
included) is measured separately with /usr/bin/time (docs/batch.md).

    python benchmarks/dask_scaling.py DIR --json benchmarks/results/dask_scaling.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    import nkcodec
    from nkcodec.dask import client_for, code_files
    from nkcodec.imageio import read_image

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--workers", default="1,2")
    p.add_argument("--json")
    args = p.parse_args(argv)
    files = sorted(Path(args.folder).glob("*.png"))
    mpix = sum(im.shape[0] * im.shape[1] for im in map(read_image, files)) / 1e6
    res = {"files": len(files), "mpix": mpix, "mpix_s": {}}
    codec = nkcodec.Codec(4)
    with tempfile.TemporaryDirectory() as out:
        pairs = [(f, Path(out) / (f.stem + ".nkc")) for f in files]
        list(codec.encode_many(files[:2], load=read_image))  # warm-up
        t = time.perf_counter()
        for (src, dst), data in zip(pairs, codec.encode_many(pairs, load=lambda p: read_image(p[0]))):
            dst.write_bytes(data)
        res["mpix_s"]["plain (in-process, batched)"] = mpix / (time.perf_counter() - t)
        for n in map(int, args.workers.split(",")):
            client = client_for(f"local:{n}")
            try:
                warm = [(files[i % len(files)], Path(out) / f"warm{i}.nkc") for i in range(2 * n)]
                list(code_files(client, "encode", warm, codec.get_config(), files_per_task=1))
                t = time.perf_counter()
                errors = [e for _, _, e in code_files(client, "encode", pairs, codec.get_config()) if e]
                res["mpix_s"][f"dask, {n} worker process(es)"] = mpix / (time.perf_counter() - t)
                assert not errors, errors[:3]
            finally:
                cluster = client.cluster
                client.close()
                cluster.close()
    for k, v in res["mpix_s"].items():
        print(f"{k}: {v:.2f} MPix/s ({res['files']} files, {mpix:.1f} MPix)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
