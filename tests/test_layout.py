"""The package's layout rules (docs/architecture.md), read from the code's own imports:
imports point down the layers, never in a circle, and the library never imports the
fitting or tools subpackages; a decode imports neither Flax nor optax, an encode no optax;
every import path of 0.2 still works."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import nkcodec

PACKAGE = Path(nkcodec.__file__).parent
# The layers, bottom up: a module may import its own layer and those below it.
LAYERS = [
    {"errors", "config"},
    {"format"},
    {"coding"},
    {"nets", "zoo"},
    {"presets", "batch", "pipeline", "codec"},
    {"imageio", "metrics", "zarr", "dask", "pillow"},
    {"fit", "tools", "__main__", "__init__"},
]
RANK = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}


def _modules() -> dict:
    """dotted name (in nkcodec) -> path, for every module of the package."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict) -> set:
    """The package's modules that ``name`` imports, at module level or inside functions."""
    package = name.split(".")[:-1] if path.name != "__init__.py" or name == "__init__" else name.split(".")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1] if node.level > 1 else package
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.split(".")[0] == "nkcodec":
                target = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:
                full = ".".join([*target, alias.name])
                found.add(full if full in modules else ".".join(target))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "nkcodec" and alias.name != "nkcodec":
                    found.add(".".join(alias.name.split(".")[1:]))
    return {m for m in found if m in modules and m != name}


def _graph() -> dict:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_module_has_a_layer():
    assert {name.split(".")[0] for name in _modules()} <= set(RANK)


def test_imports_point_down_and_the_library_never_imports_fit_or_tools():
    for name, targets in _graph().items():
        room = name.split(".")[0]
        for target in targets:
            up = target.split(".")[0]
            assert RANK[up] <= RANK[room], f"{name} imports {target}, a higher layer"
            if room not in ("fit", "tools", "__main__", "__init__"):
                assert up not in ("fit", "tools"), f"the library module {name} imports {target}"
            if room == "coding":
                assert up != "nets", f"{name}: the coding stages have no nets"


def test_no_import_cycles():
    graph = _graph()
    state = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", f"import cycle: {' -> '.join([*trail, node])}"
        state[node] = "open"
        for nxt in sorted(graph[node]):
            visit(nxt, [*trail, node])
        state[node] = "done"

    for node in sorted(graph):
        visit(node, [])


@pytest.mark.parametrize(
    "old, new",
    [("rle", "coding.rle"), ("kmeans", "coding.kmeans"), ("context", "coding.context"), ("container", "format.container"),
     ("zoo", "zoo"), ("metrics", "metrics"), ("evaluate", "tools.evaluate"), ("lossless", "coding.nearlossless_v2"),
     ("residual", "coding.nearlossless_v1"), ("fixed32", "nets.exact_v2"), ("train", "fit.train"), ("schema", "format.schema")],
)  # fmt: skip
def test_old_import_paths_are_the_same_modules(old, new):
    module = importlib.import_module(f"nkcodec.{new}")
    assert importlib.import_module(f"nkcodec.{old}") is module
    assert getattr(nkcodec, old) is module
    assert module.__spec__.name == f"nkcodec.{new}"


def test_documented_attributes():
    assert callable(nkcodec.evaluate.bd_rate) and callable(nkcodec.rle.encode) and callable(nkcodec.zoo.load_model)
    for sub in ("coding", "nets", "format", "presets", "tools", "fit", "lossless", "pillow", "zarr", "dask"):
        assert getattr(nkcodec, sub) is not None  # any submodule, on first use
    with pytest.raises(AttributeError):
        nkcodec.no_such_thing  # noqa: B018


_LEAN = """
import sys, numpy as np, nkcodec
from pathlib import Path
fixture = Path(sys.argv[1]).read_bytes()
nkcodec.decompress(fixture)
heavy = sorted(m for m in ("flax", "optax") if m in sys.modules)
assert not heavy, f"a decode imported {heavy}"
img = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
nkcodec.decompress(nkcodec.compress(img, quality=3))
assert "optax" not in sys.modules, "an encode imported optax"
print("lean")
"""


def test_a_decode_imports_neither_flax_nor_optax_and_an_encode_no_optax():
    fixture = Path(__file__).parent / "fixtures" / "context_v1_model6.nkc"
    out = subprocess.run([sys.executable, "-c", _LEAN, str(fixture)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "lean", out.stderr[-2000:]
