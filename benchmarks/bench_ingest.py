"""A ratings file to fit-ready arrays: mfrec.read_ratings against pandas'
read_csv + factorize, timed in the same run.

Writes a synthetic CSV of N rows in MovieLens' layout (userId, movieId,
rating, timestamp; N from the command line, default 5M; with --csv PATH the
file is kept there and reused) and reads it in a fresh subprocess per
method, each reporting its wall time, its CPU time (user + system, all
threads) and peak resident memory (getrusage maxrss) above the resident
memory after its imports. "fit-ready" means contiguous int indices for
users and items plus the ratings: mfrec's id mapping is the one ``fit``
runs. The methods run in turn, --rounds times (default 3): each round's
ratios and the load average are printed, then their medians (on 2 cores
shared with other work one round's wall time varies by 30%).

    python benchmarks/bench_ingest.py 25000000 [SETUP_ROWS] [--rounds R] [--csv PATH]

Then the id set-up that ``fit`` runs (the sorted vocabulary and each
rating's index, users and items) on SETUP_ROWS ratings (default: N, at most
5M) with integer ids (small: mfrec maps them through a table; spread over
int64, as hashes are: a sort) against the same ids as strings ("u123456"),
in this process (best of three).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

IDS = """
try:
    from mfrec._ids import known_ids as _known_ids
except ImportError:
    from mfrec.model import _known_ids
"""
READ = """
ready()
r = mfrec.read_ratings(PATH{})
read_done(r.user, r.item, r.rating, r.timestamp)
_known_ids(r.user, None); _known_ids(r.item, None)
"""
DEFAULT = "mfrec.read_ratings (pandas)"  # the default engine for text
METHODS = {  # each imports its parser before the clock starts, as pandas' does
    DEFAULT: "import mfrec, pandas, numpy as np" + IDS + READ.format(""),
    "mfrec.read_ratings (pyarrow)": "import mfrec, numpy as np, pyarrow.csv" + IDS
    + READ.format(", engine='pyarrow'"),
    "pandas read_csv + factorize": """
import pandas as pd, numpy as np
ready()
df = pd.read_csv(PATH)
read_done(*(df[c].to_numpy() for c in df.columns))
pd.factorize(df["userId"]); pd.factorize(df["movieId"])
""",
}

HARNESS = """
import json, resource, sys, time
PATH = sys.argv[1]
def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def current_rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20
def ready():
    global t0, base, cpu0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    base, t0, cpu0 = current_rss(), time.perf_counter(), usage.ru_utime + usage.ru_stime
def read_done(*arrays):
    global t_read, final, rss_read
    t_read, rss_read = time.perf_counter() - t0, rss()
    final = sum(a.nbytes for a in arrays if a is not None) / 2**20
"""
REPORT = """
ready_s, usage = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps(dict(read_s=t_read, ready_s=ready_s, base_mb=base, read_peak_mb=rss_read,
                      peak_mb=rss(), final_mb=final,
                      cpu_s=usage.ru_utime + usage.ru_stime - cpu0)))
"""


def write_csv(path: str, n: int, seed: int = 0) -> None:
    """MovieLens-like: ~n/150 users, ~n/400 items, half-star ratings."""
    import pyarrow as pa
    from pyarrow import csv

    rng = np.random.default_rng(seed)
    block = 5_000_000
    with csv.CSVWriter(path, pa.schema([("userId", pa.int64()), ("movieId", pa.int64()),
                                        ("rating", pa.float64()),
                                        ("timestamp", pa.int64())])) as out:
        for start in range(0, n, block):
            m = min(block, n - start)
            out.write(pa.table({
                "userId": np.sort(rng.integers(1, n // 150 + 2, m)),
                "movieId": rng.zipf(1.3, m) % (n // 400 + 1000) + 1,
                "rating": rng.integers(1, 11, m) / 2,
                "timestamp": rng.integers(789_652_009, 1_700_000_000, m)}))


def run(method: str, path: str) -> dict:
    code = HARNESS + METHODS[method] + REPORT
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=5_000_000)
    parser.add_argument("setup_rows", nargs="?", type=int)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--csv", help="the CSV's path: written when absent, else reused")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.csv or os.path.join(tmp, "ratings.csv")
        if not os.path.exists(path):
            t0 = time.perf_counter()
            write_csv(path, args.n)
            print(f"{args.n:,} rows written in {time.perf_counter() - t0:.1f} s")
        print(f"{path}: {os.path.getsize(path) / 2**20:.0f} MB of CSV")
        rounds = [one_round(path, k) for k in range(args.rounds)]
    print("median over the rounds: " + "; ".join(
        f"{name} {np.median([r[name] for r in rounds]):.2f}x" for name in rounds[0]))
    setup_seconds(args.setup_rows or min(args.n, 5_000_000))


def one_round(path: str, k: int) -> dict:
    """Each method once, in an order that turns from round to round; the
    ratios of mfrec's default to pandas."""
    order = list(METHODS)[k % len(METHODS):] + list(METHODS)[:k % len(METHODS)]
    load = os.getloadavg()[0]
    results = {m: run(m, path) for m in order}
    print(f"round {k + 1} (load average {load:.2f} before, {os.getloadavg()[0]:.2f} after)")
    print(f"  {'method':30s} {'read s':>7s} {'ready s':>8s} {'cpu s':>6s} {'arrays MB':>9s} "
          f"{'read peak-base MB':>17s} {'ratio':>6s} {'ready peak-base MB':>18s}")
    for m in METHODS:
        r = results[m]
        read, ready = r["read_peak_mb"] - r["base_mb"], r["peak_mb"] - r["base_mb"]
        print(f"  {m:30s} {r['read_s']:7.2f} {r['ready_s']:8.2f} {r['cpu_s']:6.2f} "
              f"{r['final_mb']:9.0f} {read:17.0f} {read / r['final_mb']:6.2f} {ready:18.0f}")
    ours, pandas = results[DEFAULT], results["pandas read_csv + factorize"]
    ratios = {"time": ours["ready_s"] / pandas["ready_s"],
              "cpu time": ours["cpu_s"] / pandas["cpu_s"],
              "memory": (ours["peak_mb"] - ours["base_mb"]) / (pandas["peak_mb"] - pandas["base_mb"]),
              "peak / arrays": (ours["peak_mb"] - ours["base_mb"]) / ours["final_mb"]}
    print("  mfrec / pandas: " + "; ".join(f"{name} {v:.2f}x" for name, v in ratios.items()))
    return ratios


def setup_seconds(n: int) -> None:
    try:  # the id mapping fit runs (mfrec._ids once model.py is split)
        from mfrec._ids import known_ids as _known_ids
    except ImportError:
        from mfrec.model import _known_ids

    rng = np.random.default_rng(1)
    users = rng.integers(1, n // 150 + 2, n)
    items = rng.zipf(1.3, n) % (n // 400 + 1000) + 1
    as_str = [np.char.add("u", a.astype(str)) for a in (users, items)]
    as_str = [a.astype(f"U{np.char.str_len(a).max()}") for a in as_str]  # "u123": U7, not U22
    spread = [a * 1_000_003_117 for a in (users, items)]  # ids like hashes: no dense table
    for name, (u, i) in (("integer", (users, items)), ("spread integer", spread),
                         ("string", as_str)):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            _known_ids(u, None), _known_ids(i, None)
            times.append(time.perf_counter() - t0)
        print(f"id set-up, {n:,} ratings, {name} ids ({u.dtype}): {min(times):.3f} s")
        if name == "integer":
            base = min(times)
        if name == "spread integer":
            spread_time = min(times)
    print(f"string / integer set-up: {min(times) / base:.1f}x (over spread integer ids: "
          f"{min(times) / spread_time:.1f}x)")


if __name__ == "__main__":
    main()
