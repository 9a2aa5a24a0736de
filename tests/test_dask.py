"""Coding files on a real dask.distributed LocalCluster with two worker processes."""

import numpy as np
import pytest
from PIL import Image

import nkcodec
from nkcodec.tools.cli import main

from .test_learned import photo

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")


@pytest.fixture(scope="module")
def client():
    from nkcodec.dask import client_for

    c = client_for("local:2")
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


def test_files_on_two_worker_processes(tmp_path, client):
    from nkcodec.dask import code_files

    srcs = []
    for i in range(6):
        srcs.append(tmp_path / f"{i}.png")
        Image.fromarray(photo((40 + 8 * i, 56, 3), seed=i)).save(srcs[-1])
    (tmp_path / "bad.png").write_bytes(b"not an image")
    srcs.insert(3, tmp_path / "bad.png")
    out = tmp_path / "out"
    out.mkdir()
    config = nkcodec.Codec(3).get_config()
    pairs = [(s, out / (s.stem + ".nkc")) for s in srcs]
    results = list(code_files(client, "encode", pairs, config, files_per_task=2))
    assert [r[0] for r in results] == [str(s) for s in srcs]  # input order
    assert results[3][1] is None and "bad.png" in results[3][2]  # reported; the rest went on
    for s, line, error in results[:3] + results[4:]:
        assert error is None
        stem = s.rsplit("/", 1)[1][:-4]
        assert (out / f"{stem}.nkc").read_bytes() == nkcodec.compress(np.asarray(Image.open(s)), 3)
    # each worker loaded the model and compiled once, whatever the number of tasks
    codecs = client.run(lambda: len(__import__("nkcodec.dask").dask._CODECS))
    assert len(codecs) == 2 and all(n <= 1 for n in codecs.values())


def test_cli_scheduler(tmp_path, capsys, client):
    src = tmp_path / "a.png"
    Image.fromarray(photo((32, 48, 3))).save(src)
    address = client.scheduler.address
    assert main(["encode", str(src), "-o", str(tmp_path / "a.nkc"), "--scheduler", address]) == 0
    assert main(["decode", str(tmp_path / "a.nkc"), "-o", str(tmp_path / "b.png"), "--scheduler", address]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), nkcodec.decompress((tmp_path / "a.nkc").read_bytes()))
