"""Stand-in renderer speed: images per second at 64x64 (3 bands, PSF and noise) on this machine.

Not part of the test suite. A fresh process renders ``--n`` galaxies drawn from the prior in batches of 256; the
first batch is timed separately (it includes JAX's compilation), then all ``--n`` images; writing FITS is not
included (``--truth-set`` times ``annostat truth standin``'s whole path too).

    python benchmarks/render_speed.py --n 4096
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--truth-set", type=int, default=500, help="galaxies for the whole truth-set path (0: skip)")
    args = parser.parse_args()
    start = time.perf_counter()
    from annostat.truth.standin import draw_parameters, render, standin_truth_set

    params = draw_parameters(args.n, seed=0)
    t0 = time.perf_counter()
    render(params.iloc[:256], size=args.size)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    render(params, size=args.size)
    steady = time.perf_counter() - t0
    total = time.perf_counter() - start  # imports, the compiling first batch and the timed run
    out = {
        "n": args.n,
        "size": args.size,
        "first_batch_seconds_with_compilation": first,
        "seconds": steady,
        "images_per_second": args.n / steady,
        "seconds_with_imports_and_compilation": total,
    }
    if args.truth_set:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            standin_truth_set(tmp, args.truth_set, size=args.size)
            out["truth_set_galaxies"] = args.truth_set
            out["truth_set_seconds"] = time.perf_counter() - t0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
