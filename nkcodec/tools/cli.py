"""Command line: ``python -m nkcodec COMMAND``.

Commands: ``encode``, ``decode``, ``info``, ``compare`` and ``view`` for images;
``bench``, ``eval`` and ``fuzz`` for measuring; ``train``, ``export``, ``fit-context``
and ``fit-exact`` for offline fitting.

Every command is ``main(argv) -> int``; errors print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["main", "read_image", "write_image"]

from ..imageio import MODES, check_deep_format, image_format, read_image, write_atomic, write_image  # noqa: E402  (re-exported: the CLI's image I/O)


def _outputs(inputs: list, output, suffix: str) -> list:
    """Output path of each input: ``output`` itself for one input (or, when it is
    an existing folder or ends with /, a file in it), else ``output`` must be a folder
    (created; not a name with an extension) and each input's name gets ``suffix``
    there; without ``output``, next to the input."""
    if output == "-":
        raise ValueError("-o -: nkcodec writes files, not standard output; name a file or a folder")
    is_folder = output is not None and (output.endswith(("/", os.sep)) or Path(output).is_dir())  # a trailing / names a folder
    if output is None:
        outs = [Path(i).with_suffix(suffix) for i in inputs]
    elif len(inputs) == 1 and not is_folder:
        outs = [Path(output)]
    else:
        folder = Path(output)
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"-o {output}: with several inputs, -o must be a folder")
        if not is_folder and folder.suffix:  # "one.nkc": a file's name, not a folder to make
            raise ValueError(f"-o {output}: with several inputs, -o must be a folder (end it with / to make one named so)")
        folder.mkdir(parents=True, exist_ok=True)
        outs = [folder / Path(i).with_suffix(suffix).name for i in inputs]
    seen = {}
    for i, o in zip(inputs, outs):
        key = o.resolve()
        if key in seen:
            raise ValueError(f"{seen[key]} and {i} would both be written to {o}")
        if key == Path(i).resolve():
            raise ValueError(f"{i}: output would overwrite the input")
        seen[key] = i
    return outs


def _check_counts(args) -> None:
    for name in ("jobs", "batch_size"):
        v = getattr(args, name, None)
        if v is not None and v < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")


def _each(args, suffix: str, run, finish, check_output) -> int:
    """Code every input file of ``args`` through a batched pipeline:
    ``run(pairs)`` yields, in input order, the result of each (input, output)
    pair or the exception it raised, and ``finish(input, output, result)``
    writes the output and returns the line to print.  Writing runs in a
    thread of its own, a few files behind the coding; lines are printed in
    input order.  A failing file is reported (one line) and the others still
    run; with one input its error is the command's.  Status 1 if any failed.
    ``check_output(path)`` refuses an output path (ValueError) before anything is coded."""
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    from ..errors import NkcodecError

    _check_counts(args)
    inputs = args.input
    pairs = list(zip(inputs, _outputs(inputs, args.output, suffix)))
    for _, out in pairs:
        check_output(out)
    existing = [(i, o) for i, o in pairs if o.exists()]
    if existing and args.skip_existing:  # a rerun after an interrupted batch: finish the rest
        for i, o in existing:
            print(f"{o}: exists, skipped", flush=True)
        pairs = [p for p in pairs if not p[1].exists()]
        inputs = [i for i, _ in pairs]
    elif existing and not args.force:
        names = ", ".join(str(o) for _, o in existing[:3]) + (" ..." if len(existing) > 3 else "")
        raise ValueError(f"{len(existing)} output(s) exist: {names}; give --force to overwrite or --skip-existing to keep them")
    failed = 0
    writes = deque()  # (input, future of its printed line), in input order

    def report(limit):
        nonlocal failed
        while len(writes) > limit:
            src, f = writes.popleft()
            try:
                print(f.result(), flush=True)
            except (NkcodecError, ValueError, OSError) as e:
                if len(inputs) == 1:
                    raise
                print(f"nkcodec: error: {src}: {e}", file=sys.stderr)
                failed += 1

    results = run(pairs)
    writer = ThreadPoolExecutor(1, thread_name_prefix="nkcodec-write")
    try:
        for (src, out), result in zip(pairs, results):
            if isinstance(result, Exception):
                f = Future()
                f.set_exception(result)
            else:
                f = writer.submit(finish, src, out, result)
            writes.append((src, f))
            report(2)
        report(0)
    finally:  # on an error or Ctrl-C: the pipeline stops, queued work is dropped, no partial file is left
        close = getattr(results, "close", None)
        if close:
            close()
        writer.shutdown(wait=True, cancel_futures=True)
    if failed:
        print(f"nkcodec: {failed} of {len(pairs)} files failed", file=sys.stderr)
    return 1 if failed else 0


def _pipeline_options(args) -> dict:
    """encode_many/decode_many options from --jobs and --batch-size."""
    options = {"errors": "yield"}
    if args.jobs is not None:
        options["lanes"] = options["workers"] = min(args.jobs, len(args.input))
    if args.batch_size is not None:
        options["batch_size"] = args.batch_size
    return options


class _Written(str):
    """The line a cluster worker returns for a file it has written."""


def _on_cluster(args, mode: str, pairs: list, config: dict):
    """Code ``pairs`` on the dask cluster of ``--scheduler`` (:mod:`nkcodec.dask`):
    each result is the worker's line, or an NkcodecError with its error."""
    from ..dask import client_for, code_files
    from ..errors import NkcodecError

    if getattr(args, "max_bytes", None) is not None:
        raise ValueError("--max-bytes is not supported with --scheduler")
    client = client_for(args.scheduler)
    try:
        for _, line, error in code_files(client, mode, pairs, config):
            yield _Written(line) if error is None else NkcodecError(error)
    finally:
        cluster = client.cluster if args.scheduler.startswith("local:") else None
        client.close()
        if cluster is not None:
            cluster.close()


def _encode(args) -> int:
    import numpy as np

    import nkcodec

    options = {}
    if args.effort is not None:
        options["effort"] = args.effort
    if args.adaptive_filter:
        options["adaptive_filter"] = True
    if args.max_error is not None:
        if args.preset != "near-lossless":
            raise ValueError("--max-error applies to --preset near-lossless only")
        options["max_error"] = args.max_error
    if args.bits is not None:
        if args.preset != "near-lossless":
            raise ValueError("--bits applies to --preset near-lossless only")
        options["bits"] = args.bits
    shapes, sizes = {}, {}

    def load(pair):
        image = read_image(pair[0], on_convert=lambda message: print(f"nkcodec: note: {message}", file=sys.stderr), deep=args.preset == "near-lossless")
        shapes[pair[0]], sizes[pair[0]] = image.shape, image.itemsize
        return image

    if args.max_bytes is not None:
        if args.quality is not None:
            raise ValueError("give --quality or --max-bytes, not both")

        def run(pairs):  # rate control codes each file several times: one after another
            for pair in pairs:
                try:
                    yield nkcodec.compress_to_size(load(pair), args.max_bytes, args.preset, **options)
                except Exception as e:
                    yield e

    else:
        quality = 4 if args.quality is None else args.quality
        codec = nkcodec.Codec(quality, args.preset, **options)  # one codec: the nets compile once

        def run(pairs):
            if args.scheduler:
                return _on_cluster(args, "encode", pairs, codec.get_config())
            return codec.encode_many(pairs, load=load, **_pipeline_options(args))

    def finish(src, out, data):
        if isinstance(data, _Written):  # a cluster worker wrote it
            return str(data)
        write_atomic(out, lambda tmp: tmp.write_bytes(data))
        shape = shapes.pop(src)
        pixels, raw = shape[0] * shape[1], int(np.prod(shape)) * sizes.pop(src)
        if raw < len(data):  # the user should not find this out by reading a ratio
            hint = " (rle suits flat graphics; for photos try --preset near-lossless --max-error 0)" if args.preset == "rle" else ""
            print(f"nkcodec: note: {out} is larger than the raw samples ({len(data)} > {raw} bytes){hint}", file=sys.stderr)
        return f"{out}: {len(data)} bytes, {8 * len(data) / pixels:.4f} bpp, ratio {raw / len(data):.3f}"

    def check_output(out):
        if out.suffix.lower() != ".nkc":
            raise ValueError(f"{out}: encode writes .nkc streams; name the output *.nkc (decode writes images)")

    return _each(args, ".nkc", run, finish, check_output)


def _decode(args) -> int:
    import nkcodec

    def run(pairs):
        if args.scheduler:
            return _on_cluster(args, "decode", pairs, nkcodec.Codec().get_config())
        return nkcodec.decompress_many(pairs, load=lambda pair: Path(pair[0]).read_bytes(), **_pipeline_options(args))

    def finish(src, out, image):
        if isinstance(image, _Written):
            return str(image)
        fmt, opts = image_format(out, 1 if image.ndim == 2 else image.shape[2])
        check_deep_format(out, image, fmt)
        write_atomic(out, lambda tmp: write_image(tmp, image, fmt, **opts))
        return f"{out}: {image.shape[1]}x{image.shape[0]}, {1 if image.ndim == 2 else image.shape[2]} channel(s)"

    return _each(args, ".png", run, finish, image_format)


def _info(args) -> int:
    failed = 0
    for i, path in enumerate(args.input):
        if i:
            print()
        try:
            _info_one(path)
        except BrokenPipeError:
            raise
        except (ValueError, OSError) as e:
            if len(args.input) == 1:
                raise
            print(f"nkcodec: error: {path}: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def _info_one(path) -> None:
    from ..format.container import unpack_container
    from ..presets import PRESETS

    data = Path(path).read_bytes()
    h, sections = unpack_container(data)
    print(f"file:      {path} ({len(data)} bytes)")
    print(f"format:    NKC v{h.version}")
    from ..presets.near_lossless import NearLosslessPreset

    res = h.params.get("residual") if isinstance(h.params.get("residual"), dict) else None
    bits, wide = NearLosslessPreset.sample_depth(h.params) if h.preset == "near-lossless" else (8, False)
    mode = f"mode {MODES[h.channels]}" if h.channels in MODES and bits == 8 else f"{bits}-bit samples ({'uint16' if wide else 'uint8'})"
    print(f"image:     {h.width}x{h.height}, {h.channels} channel(s), {mode}{' (2-D)' if h.squeeze else ''}")
    from ..zoo import MODEL_IDS, RETIRED_MODELS, synthesis_of

    def _name(i):
        if i in RETIRED_MODELS:
            return f"{RETIRED_MODELS[i][0]}, retired: decode with nkcodec {RETIRED_MODELS[i][1]}"
        return MODEL_IDS.get(i, "not in this build")

    model = f"model {h.model_id} ({_name(h.model_id)})" if h.model_id else "no model"
    ladder = h.preset in PRESETS and PRESETS[h.preset].quality_ladder
    print(f"preset:    {h.preset}  {f'quality {h.quality}' if ladder else 'quality not used'}  {model}")
    if synthesis_of(h.model_id):
        from ..batch import device_name

        print(f"decoder:   {synthesis_of(h.model_id)}, nets on {device_name()}")
    if h.preset == "near-lossless" and res:  # its quality is unused: say what the stream guarantees
        how = (
            f"learned base at quality {res.get('base')} plus its residual (version 1)"
            if res.get("v") is None
            else f"predictive coding, no model (version {res.get('v')})"
        )
        print(f"bound:     every sample within {res.get('max_error')} of the original; {how}")
    print(f"bpp:       {8 * len(data) / h.num_pixels:.4f}  ratio {h.num_pixels * h.channels * (2 if wide else 1) / len(data):.3f}")
    print(f"params:    {h.params}")
    print(f"sections:  {[len(s) for s in sections]} bytes")


def _view(args) -> int:
    from .view import serve

    return serve(args.host, args.port, args.open)


def _fuzz(args) -> int:
    from .fuzz import main_fuzz

    return main_fuzz(args)


def _bench(args) -> int:
    from .bench import run_bench

    run_bench(images=args.images, json_path=args.json, quick=args.quick, stages=args.stages.split(","))
    return 0


def _train(args) -> int:
    from ..fit.train import TrainConfig, train_and_evaluate
    from ..nets.transforms import NetConfig

    given = {k: getattr(args, k) for k in ("steps", "batch", "crop", "lr", "seed", "decay_start") if getattr(args, k) is not None}
    mcfg = NetConfig(n=args.n, m=args.m, activation=args.activation, prior_per_quality=args.per_quality_prior)
    tcfg = TrainConfig(**given)
    trainer = train_and_evaluate(
        args.data,
        args.workdir,
        mcfg,
        tcfg,
        resume=args.resume,
        overrides=given,  # on --resume, flags given explicitly replace the checkpoint's settings
        init=args.init,
        eval_dir=args.eval_dir,
        max_seconds=args.max_seconds,
        fit_seconds=args.fit_seconds,
    )
    print(f"stopped at step {trainer.step}; checkpoint in {Path(args.workdir) / 'ckpt.npz'}")
    return 0


def _eval(args) -> int:
    from .evaluate import run_eval

    if args.published and (args.ablation or args.lossless):
        raise ValueError("--published applies to the rate-distortion eval, not to --ablation or --lossless")
    if args.ablation:
        from .evaluate import run_ablation

        run_ablation(args.dir, json_path=args.json)
        return 0
    if args.deep and not args.lossless:
        raise ValueError("--deep applies to --lossless")
    if args.dir is None and not args.deep:
        raise ValueError("name the folder of images to evaluate")
    if args.lossless:
        from .evaluate import run_lossless

        run_lossless(args.dir, json_path=args.json, plot_path=args.plot, deep=args.deep)
        return 0
    efforts = tuple(int(e) for e in args.effort.split(","))
    run_eval(args.dir, json_path=args.json, plot_path=args.plot, paper=not args.no_paper, efforts=efforts, published=args.published or ())
    return 0


def _compare(args) -> int:
    import numpy as np

    import nkcodec

    image = read_image(args.input)
    data = nkcodec.compress(image, quality=args.quality, preset=args.preset)
    recon = nkcodec.decompress(data)
    bpp = nkcodec.metrics.bpp(data, image)
    psnr = nkcodec.metrics.psnr(image, recon)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    err = np.abs(image.astype(np.int16) - recon.astype(np.int16))
    err = err.max(axis=2) if err.ndim == 3 else err
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    axes[0].imshow(_shown(image), cmap="gray", vmin=0, vmax=255)
    axes[0].set_title("original")
    axes[1].imshow(_shown(recon), cmap="gray", vmin=0, vmax=255)
    axes[1].set_title(f"nkcodec {args.preset} q{args.quality}: {bpp:.3f} bpp, {psnr:.2f} dB")
    im = axes[2].imshow(np.minimum(err * args.magnify, 255), cmap="inferno", vmin=0, vmax=255)
    axes[2].set_title(f"|error| x{args.magnify} (max over channels)")
    fig.colorbar(im, ax=axes[2], fraction=0.03)
    for a in axes:
        a.axis("off")
    fig.tight_layout()
    out = Path(args.output) if args.output else Path(args.input).with_name(Path(args.input).stem + "_compare.png")
    fig.savefig(out, dpi=100)
    plt.close(fig)
    print(f"{out}: {len(data)} bytes, {bpp:.4f} bpp, PSNR {psnr:.2f} dB")
    return 0


def _shown(image):
    """An image as matplotlib shows it: gray as HxW, gray + alpha as RGBA."""
    import numpy as np

    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0]
    if image.ndim == 3 and image.shape[2] == 2:
        return np.concatenate([np.repeat(image[..., :1], 3, axis=2), image[..., 1:]], axis=2)
    return image


def _export(args) -> int:
    from ..fit.train import load_checkpoint
    from ..zoo import export

    trainer = load_checkpoint(args.ckpt)
    path = export(trainer, args.output, model_id=args.model_id)
    print(f"exported EMA weights at step {trainer.step} to {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


def _fit_context(args) -> int:
    from ..coding.context import LATEST, NUM_CONTEXTS
    from ..fit.context_tables import fit
    from ..fit.train import load_images
    from ..nets.weights_file import add_to_weights
    from ..zoo import ModelRuntime

    m = ModelRuntime(args.weights)
    arrays = fit(m, load_images(args.data), k=args.contexts or NUM_CONTEXTS)
    path = add_to_weights(args.weights, "ctx", arrays)
    print(f"wrote version-{LATEST} context tables ({arrays[f'v{LATEST}/freq'].size} frequencies, {int(arrays[f'v{LATEST}/images'])} images) into {path}")
    return 0


def _fit_exact(args) -> int:
    from ..fit.exact import fit
    from ..fit.train import load_images
    from ..zoo import ModelRuntime, add_to_weights

    m = ModelRuntime(args.weights)
    arrays = fit(m, load_images(args.data))
    path = add_to_weights(args.weights, "fixed32", arrays)
    print(f"wrote the float32-exact synthesis (fixed-point version 2, clamps from {int(arrays['images'])} images) into {path}")
    return 0


def _positive(text: str) -> int:
    """argparse type: an integer of at least 1."""
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (``nkcodec: error: ...``) and status 2,
    as every other error is one line (status 1)."""

    def error(self, message):
        self.exit(2, f"nkcodec: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    from ..presets import ALIASES, PRESETS

    presets = sorted(set(PRESETS) | set(ALIASES))
    from .. import __version__

    p = _Parser(prog="python -m nkcodec", description="nkcodec image codec")
    p.add_argument("--version", action="version", version=f"nkcodec {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    _coding_parsers(sub, presets)
    _tool_parsers(sub, presets)
    _fitting_parsers(sub)
    return p


def _coding_parsers(sub, presets: list) -> None:
    """encode and decode."""
    e = sub.add_parser("encode", help="compress image files to .nkc")
    e.add_argument(
        "input", nargs="+", help="image file(s): 8-bit gray, RGB or RGBA (PNG, JPEG, ...); near-lossless also 16-bit PNG and TIFF of up to 16 channels"
    )
    _file_options(e, ".nkc")
    e.add_argument("--quality", type=int, help="1 (smallest) .. 8 (best), default 4")
    e.add_argument("--max-bytes", type=int, help="instead of --quality: the highest quality whose file fits in this many bytes")
    e.add_argument("--preset", default="default", choices=presets)
    e.add_argument("--max-error", type=int, help="near-lossless: largest error of any sample, in sample units (default 1; 0 = lossless)")
    e.add_argument("--bits", type=int, help="near-lossless: bits per sample, 1..16 (default: the file's 8 or 16; e.g. 12 for 12-bit data in 16-bit files)")
    e.add_argument(
        "--effort",
        type=int,
        help="default/context preset: 1 refines the latent (about 25x slower encode, same decoder); near-lossless: 1 or 2 try more per tile (slower encode, same decoder)",
    )
    e.add_argument(
        "--adaptive-filter", action="store_true", help="learned presets: an exact per-image filter after the synthesis (-2%% BD-rate, 3x slower encode)"
    )
    e.set_defaults(func=_encode)

    d = sub.add_parser("decode", help="decompress .nkc files to PNG (or TIFF, lossless WebP, BMP: by the output's extension)")
    d.add_argument("input", nargs="+", help=".nkc file(s)")
    _file_options(d, ".png")
    d.set_defaults(func=_decode)


def _file_options(p, suffix: str) -> None:
    """The options ``encode`` and ``decode`` share: where outputs go, and how many at once."""
    p.add_argument("-o", "--output", help=f"output file (one input) or folder (default: next to each input, {suffix})")
    p.add_argument("-j", "--jobs", type=int, help="images whose nets run at once, and entropy coders (default: 2 and one per spare core on CPU)")
    p.add_argument("--batch-size", type=int, help="images per device batch (default 1 on CPU, 16 on a GPU)")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--force", action="store_true", help="overwrite existing outputs (never an input)")
    existing.add_argument("--skip-existing", action="store_true", help="leave existing outputs alone and code the rest (to finish an interrupted run)")
    p.add_argument("--scheduler", help="code on a dask.distributed cluster: its address, or local:N for N local worker processes (the dask extra)")


def _tool_parsers(sub, presets: list) -> None:
    """fuzz, view, info, bench, eval, compare."""
    z = sub.add_parser("fuzz", help="decode mutated fixtures: only images, CorruptStreamError or RetiredModelError may come out")
    z.add_argument(
        "--fixtures", help="folder of valid .nkc streams to mutate (default: ./tests/fixtures where it exists, else streams made here from the shipped samples)"
    )
    z.add_argument("-n", "--mutations", type=_positive, default=10000, help="mutated streams to decode (default 10000)")
    z.add_argument("--seed", type=int, default=0)
    z.add_argument("--case", type=int, help="reproduce this case of --seed here, with its traceback")
    z.add_argument("--save", help="with --case: write the mutated stream here")
    z.add_argument("-j", "--jobs", type=int, help="worker processes (default: one per core)")
    z.add_argument("--time-limit", type=float, default=2.0, help="seconds a decode may take (default 2; ten times that is a hang)")
    z.add_argument("--memory-mb", type=int, default=4096, help="address-space cap of each worker, MiB (default 4096: XLA's compiler needs room of its own)")
    z.add_argument("--json", help="write the counts and failures here")
    z.add_argument("--engine", choices=["seeded", "atheris"], default="seeded", help="seeded: counted, reproducible; atheris: coverage-guided libFuzzer")
    z.add_argument("--libfuzzer", nargs="*", default=[], help="extra libFuzzer flags for --engine atheris")
    z.set_defaults(func=_fuzz)

    w = sub.add_parser("view", help="the viewer: a local web page comparing nkcodec with the original, JPEG and WebP")
    w.add_argument("--port", type=int, default=8000)
    w.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    w.add_argument("--open", action="store_true", help="open the page in the default browser")
    w.set_defaults(func=_view)

    i = sub.add_parser("info", help="describe .nkc files")
    i.add_argument("input", nargs="+")
    i.set_defaults(func=_info)

    b = sub.add_parser("bench", help="throughput of every stage, with peers timed in the same run")
    b.add_argument("--images", help="folder of images (default: the samples shipped in the package)")
    b.add_argument("--json", help="write results as JSON to this file")
    b.add_argument("--quick", action="store_true", help="fewer repeats and a smaller synthetic stream")
    b.add_argument("--stages", default="rle,kmeans,codec", help="comma-separated stage groups: rle, kmeans, codec, kmeans-all-pixels (slow)")
    b.set_defaults(func=_bench)

    v = sub.add_parser("eval", help="rate-distortion vs JPEG and WebP on a folder (same run)")
    v.add_argument("dir", nargs="?", help="folder of images (not with --lossless --deep)")
    v.add_argument("--json", help="write CompressAI-shaped results here")
    v.add_argument("--plot", help="write the RD plot (PNG) here")
    v.add_argument("--no-paper", action="store_true", help="skip the paper preset")
    v.add_argument("--effort", default="0", help="comma-separated encoder efforts of the default preset, e.g. 0,1 (default 0)")
    v.add_argument(
        "--published",
        nargs="+",
        metavar="JSON",
        help="published results on the same images (CompressAI's JSON, e.g. ../shared/anchors/compressai_kodak/*.json): drawn dotted and compared by BD-rate, not run",
    )
    v.add_argument("--ablation", action="store_true", help="instead: each preset at every quality (what each stage adds)")
    v.add_argument("--lossless", action="store_true", help="instead: near-lossless, palette and rle against PNG and lossless WebP (the paper's 49.5 dB point)")
    v.add_argument(
        "--deep", action="store_true", help="with --lossless: 16-bit MRI slices (nibabel's test data) against 16-bit PNG, JPEG 2000, JPEG XL and JPEG-LS"
    )
    v.set_defaults(func=_eval)

    c = sub.add_parser("compare", help="original, reconstruction and error map side by side (PNG)")
    c.add_argument("input")
    c.add_argument("-o", "--output")
    c.add_argument("--quality", type=int, default=4)
    c.add_argument("--preset", default="default", choices=presets)
    c.add_argument("--magnify", type=int, default=8, help="error map gain")
    c.set_defaults(func=_compare)


def _fitting_parsers(sub) -> None:
    """train, export, fit-context, fit-exact: offline work that writes weights files."""
    t = sub.add_parser("train", help="train the autoencoder (resumable)")
    t.add_argument("--data", required=True, help="folder of training images (never Kodak)")
    t.add_argument("--workdir", default="runs/train")
    t.add_argument("--resume", help="checkpoint .npz to continue from")
    t.add_argument("--init", help="start from shipped weights (.npz), e.g. nkcodec/weights/nk64-5.npz")
    t.add_argument("--eval-dir", help="folder for periodic quick evaluation crops (e.g. Kodak)")
    t.add_argument("--steps", type=int, help="total steps of the schedule (default 200000)")
    t.add_argument("--max-seconds", type=float, help="stop after this much wall time (a checkpoint is written)")
    t.add_argument(
        "--fit-seconds",
        type=float,
        help="measure the step rate, then fit the rest of the schedule (hold, then cosine decay) into this much wall time",
    )
    t.add_argument("--batch", type=int, help="crops per step (default 16)")
    t.add_argument("--crop", type=int, help="crop size in pixels (default 64)")
    t.add_argument("--lr", type=float, help="peak learning rate (default 3e-4)")
    t.add_argument("--seed", type=int, help="seed (default 0)")
    t.add_argument("--decay-start", type=float, help="fraction of --steps after which lr decays (cosine) to lr/20 (default 0.85)")
    t.add_argument("--n", type=int, default=64)
    t.add_argument("--m", type=int, default=192)
    t.add_argument("--activation", default="gdn", choices=["gdn", "relu"])
    t.add_argument("--per-quality-prior", action="store_true", help="one factorized prior per quality (nk64-2 and later)")
    t.set_defaults(func=_train)

    x = sub.add_parser("export", help="write shipped weights (EMA + integer tables) from a checkpoint")
    x.add_argument("ckpt")
    x.add_argument("-o", "--output", required=True)
    x.add_argument("--model-id", type=int, required=True, help="new id for streams made with these weights")
    x.set_defaults(func=_export)

    f = sub.add_parser("fit-context", help="fit the context preset's prediction weights and tables on training images into a weights file")
    f.add_argument("weights", help="weights file (.npz) to extend, e.g. one just exported")
    f.add_argument("--data", required=True, help="folder of training images (never Kodak)")
    f.add_argument("--contexts", type=int, help="contexts per channel and pass (default 16)")
    f.set_defaults(func=_fit_context)
    x = sub.add_parser("fit-exact", help="derive the float32-exact integer synthesis (fixed-point version 2) of a weights file")
    x.add_argument("weights", help="weights file (.npz) to extend")
    x.add_argument("--data", required=True, help="folder of training images (never Kodak): the activation ranges")
    x.set_defaults(func=_fit_exact)


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    from ..errors import NkcodecError

    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as other tools do
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except (NkcodecError, ValueError, OSError, FloatingPointError) as e:
        print(f"nkcodec: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nkcodec: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # e.g. Pillow's DecompressionBombError: still one line, no traceback
        print(f"nkcodec: error: {e.__class__.__name__}: {e}", file=sys.stderr)
        return 2
