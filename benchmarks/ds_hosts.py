"""Dawid-Skene over several processes (``annostat fit --coordinator ... --num-processes N``) against one process,
on the same Parquet votes table (``benchmarks/ds_scale.py``'s synthetic Galaxy Zoo-sized votes).

Not part of the test suite. Each run launches its processes together on this machine (CPU collectives over
localhost: gloo) and is timed from the launch to the last process's exit, the fit folder written by process 0;
answers and confusions are compared with the one-process fit's.

    python benchmarks/ds_hosts.py                       # 10M votes, 1 and 2 processes
    python benchmarks/ds_hosts.py --millions 2 --write  # and append the table to RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from ds_scale import make_table, score

CHILD = (
    "import json, resource, sys\n"
    "from annostat.cli import main\n"
    "sys.argv = ['annostat', 'fit', *sys.argv[1:], '--model', 'ds', '--quiet']\n"
    "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
    "print(json.dumps({'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


FIXED = ["--tol", "0", "--max-iter", "10"]  # the same EM iterations everywhere: the fits themselves compared


def run(table: Path, out: Path, processes: int, extra: list[str] = ()) -> dict:
    """``annostat fit`` over ``processes`` processes launched together: seconds to the last exit, peak memory."""
    base = [sys.executable, "-c", CHILD, str(table), "--out", str(out), *extra]
    flags = [] if processes == 1 else ["--coordinator", f"localhost:{_port()}", "--num-processes", str(processes)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    start = time.perf_counter()
    children = [
        subprocess.Popen(
            base + flags + (["--process-id", str(i)] if processes > 1 else []),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    results = [child.communicate() for child in children]
    seconds = time.perf_counter() - start
    for child, (stdout, stderr) in zip(children, results):
        if child.returncode:
            raise SystemExit(stderr[-3000:])
    peaks = [json.loads(stdout.strip().splitlines()[-1])["peak_mb"] for stdout, _ in results]
    return {"processes": processes, "seconds": seconds, "peak_gb": [p / 1024 for p in peaks]}


def compare(one: Path, many: Path) -> tuple[float, float]:
    """Share of subjects with the same answer, and the largest confusion difference, of two fit folders."""
    import polars as pl

    a, b = (pl.read_parquet(f / "subjects.parquet", columns=["subject", "answer"]) for f in (one, many))
    same = float((a["answer"] == b["answer"]).mean()) if a["subject"].equals(b["subject"]) else 0.0
    ca, cb = (pl.read_parquet(f / "confusion.parquet", columns=["p"])["p"].to_numpy() for f in (one, many))
    return same, float(np.abs(ca - cb).max()) if len(ca) == len(cb) else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--millions", type=int, default=10)
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--data", type=Path, default=Path("/tmp/annostat-ds-scale"))
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    table = args.data / f"votes-{args.millions}m.parquet"
    if not table.exists():
        make_table(table, args.millions * 1_000_000)
    rows = []
    for n in (int(p) for p in args.processes.split(",")):
        out = args.data / f"fit-{args.millions}m-{n}p"
        rows.append({**run(table, out, n), "out": out})
        rows[-1]["accuracy"], rows[-1]["iterations"] = score(out, table.with_suffix(".truth.npy"))
        fixed = args.data / f"fit-{args.millions}m-{n}p-fixed"
        rows[-1]["fixed"] = {**run(table, fixed, n, FIXED), "out": fixed}
        print({k: v for k, v in rows[-1].items() if k not in ("out", "fixed")}, flush=True)
    one = rows[0]
    from environment import markdown_table

    columns = [
        *(
            (name, "r")
            for name in (
                "processes",
                "seconds, launch to fit folder",
                "vs 1 process",
                "peak RSS a process (GB)",
                "EM iterations",
                "accuracy",
                "same answers as 1 process",
                "largest confusion difference",
            )
        ),
        ("10 iterations each: seconds, same answers, largest confusion difference", "l"),
    ]
    cells = []
    for r in rows:
        same, confusion = compare(one["out"], r["out"])
        fixed_same, fixed_confusion = compare(one["fixed"]["out"], r["fixed"]["out"])
        cells.append(
            [
                f"{r['processes']}",
                f"{r['seconds']:.1f}",
                f"{one['seconds'] / r['seconds']:.2f}x",
                ", ".join(f"{p:.2f}" for p in r["peak_gb"]),
                f"{r['iterations']}",
                f"{r['accuracy']:.4f}",
                f"{same:.4%}",
                f"{confusion:.1e}",
                f"{r['fixed']['seconds']:.1f} s, {fixed_same:.4%}, {fixed_confusion:.1e}",
            ]
        )
    text = markdown_table(columns, cells)
    print(text)
    if args.write:
        from environment import record

        record(
            f"Dawid-Skene over processes (`benchmarks/ds_hosts.py`, {args.millions}M votes)",
            f"`benchmarks/ds_scale.py`'s synthetic Parquet table of {args.millions}M votes; `annostat fit TABLE "
            "--model ds` with its defaults in one process, and over two processes launched together on this "
            "machine (`--coordinator localhost:PORT --num-processes 2 --process-id I`, CPU collectives over "
            "localhost), each reading its share of the subjects from the Parquet file; timed from the launch to "
            "the last exit (process 0 writes the fit folder); the default stop (a relative change of 1e-6) may fall an "
            "iteration apart when the sums are taken in another order, so the fits are also compared after 10 "
            "iterations each (`--tol 0 --max-iter 10`). Both processes share this machine's cores, so the "
            "figure shows what the exchange costs, not a cluster's speed-up.",
            text,
        )


if __name__ == "__main__":
    main()
