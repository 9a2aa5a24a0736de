import json

import numpy as np
import pytest
from PIL import Image

from nkcodec.__main__ import main


def test_encode_decode_info(tmp_path, capsys):
    img = np.zeros((10, 12, 3), np.uint8)
    img[2:5] = 99
    src = tmp_path / "a.png"
    Image.fromarray(img).save(src)
    assert main(["encode", str(src), "-o", str(tmp_path / "a.nkc"), "--preset", "rle"]) == 0
    assert main(["info", str(tmp_path / "a.nkc")]) == 0
    assert "12x10" in capsys.readouterr().out
    assert main(["decode", str(tmp_path / "a.nkc"), "-o", str(tmp_path / "b.png")]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), img)


def test_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.nkc"
    bad.write_bytes(b"NKC\x01garbage")
    assert main(["decode", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nkcodec: error: corrupt stream") and err.count("\n") == 1
    assert main(["encode", str(tmp_path / "missing.png")]) == 1
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["encode", "x.png", "--preset", "nope"])


def test_bench_json(tmp_path):
    out = tmp_path / "b.json"
    assert main(["bench", "--quick", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    stages = {r["stage"]: r for r in res["stages"]}
    for s in ("rle.encode", "rle.decode"):
        assert stages[s]["peer"] == "numpy reference"
        assert stages[s]["throughput"] > 0 and stages[s]["peer_throughput"] > 0
    assert "machine" in res and "end_to_end" in res
