"""mfrec.dask on a LocalCluster of 2 workers x 1 thread against the
single-process fit with 2 threads, on the same machine in the same run.

    python benchmarks/bench_dask.py                        # 25M ratings, "als"
    python benchmarks/bench_dask.py --size 2M --algorithms als,wals
    python benchmarks/bench_dask.py --plan                 # the 1-billion dry run only

Data: bench_scale.py's generator (MovieLens 25M's shape, cached .npy), written
once as --parts Parquet files (user, item, rating). Model: k=64, CG, 3
iterations as bench_scale.py ("wals": implicit feedback on the ratings as
ones). The single-process fit runs in a fresh process that loads the arrays
(its peak RSS includes them: the fit needs them); the blocked fit runs on a
fresh cluster from ``dd.read_parquet`` (reading included in its wall time)
and its workers' peak RSS includes their start-up (pandas, pyarrow, dask).
The two fits alternate --repeat times (on a shared machine the load moves
between them; the fastest of each kind is the least disturbed) and the CPU
seconds of each are shown beside the wall clock.
Figures: wall seconds and their ratio, peak RSS per worker against the
single process's, the bytes the workers sent each other per iteration
(measured: Worker.transfer_outgoing_bytes_total) beside the layout's own
count of factor bytes (history's exchange_bytes), and the largest relative
difference of the factors. Then the dry run of mfrec.dask.plan for 1e9
ratings on 8 to 64 workers.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

import mfrec
from bench_scale import N_ITEMS, N_USERS, dataset, machine, parse_size

K, ITERATIONS = 64, 3


def params(algorithm):
    if algorithm == "wals":
        from bench_als import ALPHA, CG_STEPS, LAMBDA
        return dict(factors=K, alpha=ALPHA - 1.0, unobserved_weight=1.0, regularization=LAMBDA,
                    solver="cg", cg_steps=CG_STEPS, iterations=ITERATIONS, seed=0)
    return dict(factors=K, solver="cg", iterations=ITERATIONS, seed=0)


def parquet_files(nnz, cache, parts):
    """The dataset as `parts` Parquet files (written once)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = os.path.join(cache, f"parquet-{nnz}-{parts}")
    if not os.path.isdir(folder):
        u, i, r = dataset(nnz, cache)
        os.makedirs(folder + ".tmp", exist_ok=True)
        for p, s in enumerate(np.array_split(np.arange(len(u)), parts)):
            table = pa.table({"user": u[s[0]:s[-1] + 1], "item": i[s[0]:s[-1] + 1],
                              "rating": r[s[0]:s[-1] + 1]})
            pq.write_table(table, os.path.join(folder + ".tmp", f"part-{p:03d}.parquet"))
        os.rename(folder + ".tmp", folder)
    return folder


def single(nnz, algorithm, cache, out):
    """The single-process fit, 2 threads, in this (fresh) process."""
    u, i, r = dataset(nnz, cache)
    if algorithm == "wals":
        r = np.ones(len(u), np.float32)
    model = mfrec.Model(algorithm, n_threads=2, **params(algorithm))
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(u, i, r)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    model.save(out)
    print(json.dumps({"wall": wall, "cpu": cpu, "peak": worker_peak(),
                      "per_iteration": [h["seconds"] for h in model.history]}))


def worker_peak():
    """The process's own peak resident memory (VmHWM): ru_maxrss would start
    from the RSS of the process that forked it (the nanny's parent)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def worker_rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def sent(client):
    return sum(client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total).values())


def blocked(folder, algorithm):
    """The blocked fit on a fresh LocalCluster(2 x 1): (figures, model)."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import mfrec.dask as md

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        client.run(lambda: __import__("mfrec"))  # imports before the clock and the baseline
        before = {w: v for w, v in client.run(worker_rss).items()}
        ddf = dd.read_parquet(folder)
        if algorithm == "wals":
            ddf = ddf.assign(rating=np.float32(1.0))
        marks = [sent(client)]

        def mark(model, row):
            marks.append(sent(client))

        model = mfrec.Model(algorithm, n_threads=1, **params(algorithm))
        c0 = sum(client.run(time.process_time).values()) - time.process_time()
        t0 = time.perf_counter()
        md.fit(model, ddf, client, callback=mark)
        wall = time.perf_counter() - t0
        cpu = sum(client.run(time.process_time).values()) + time.process_time() - c0
        peaks = client.run(worker_peak)
    return {"wall": wall, "cpu": cpu, "peaks": sorted(peaks.values()), "start_rss": sorted(before.values()),
            "sent_setup": marks[1] - marks[0], "sent": list(np.diff(marks[1:])),
            "planned": model.history[0]["exchange_bytes"],
            "per_iteration": [h["seconds"] for h in model.history]}, model


def report(algorithm, ones, manys, model, ref):
    diff = max(float(np.abs(getattr(model, f) - getattr(ref, f)).max()
                     / np.abs(getattr(ref, f)).max()) for f in ("user_factors", "item_factors"))
    walls = [(o["wall"], m["wall"]) for o, m in zip(ones, manys)]
    best = min(o["wall"] for o in ones), min(m["wall"] for m in manys)
    print(f"{algorithm}: wall single (2 threads) / dask (2 x 1), each pair in turn: "
          + ", ".join(f"{a:.1f} / {b:.1f} s = {b / a:.2f}x" for a, b in walls)
          + f"; fastest of each: {best[0]:.1f} / {best[1]:.1f} s = {best[1] / best[0]:.2f}x")
    cpus = [(o["cpu"], m["cpu"]) for o, m in zip(ones, manys)]
    print("  CPU seconds single / dask (workers + driver): "
          + ", ".join(f"{a:.1f} / {b:.1f} = {b / a:.2f}x" for a, b in cpus))
    for o, m in zip(ones, manys):
        print(f"  s/iteration single {np.round(o['per_iteration'], 2)}, dask "
              f"{np.round(m['per_iteration'], 2)}")
    one, many = ones[-1], manys[-1]
    print(f"  peak RSS single {one['peak'] / 2**20:.0f} MiB, workers "
          f"{[round(p / 2**20) for p in many['peaks']]} MiB (at start "
          f"{[round(p / 2**20) for p in many['start_rss']]}) = "
          f"{max(many['peaks']) / one['peak']:.2f}x")
    print(f"  workers sent each other: set-up {many['sent_setup'] / 2**20:.0f} MiB, per "
          f"iteration {[round(s / 2**20) for s in many['sent']]} MiB (layout's factor "
          f"bytes {many['planned'] / 2**20:.0f} MiB)")
    print(f"  factors: largest relative difference {diff:.2e}")


def dry_run():
    import mfrec.dask as md

    print("\ndry run, 1e9 ratings, 50M users x 2M items, k=64 (Zipf 0.5 users, 0.8 items), "
          "one block a worker per side:")
    print(f"{'workers':>7} | exchange user/item | GB moved / iteration | GB a worker holds")
    for w in (8, 16, 32, 64):
        for exchange in ("auto", "broadcast"):
            lay = md.plan(50_000_000, 2_000_000, 10**9, factors=64, n_workers=w,
                          exchange=exchange)
            print(f"{w:>7} | {lay.exchange['user']:>9}/{lay.exchange['item']:<8} | "
                  f"{lay.bytes_per_iteration() / 1e9:8.1f} | {lay.worker_bytes() / 1e9:6.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="25M")
    parser.add_argument("--algorithms", default="als")
    parser.add_argument("--parts", type=int, default=16)
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/mfrec/bench_scale"))
    parser.add_argument("--plan", action="store_true")
    parser.add_argument("--repeat", type=int, default=2,
                        help="fits of each kind, alternated (the machine may be shared)")
    parser.add_argument("--single", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        return single(int(args.single[0]), args.single[1], args.cache, args.single[2])
    if args.plan:
        return dry_run()
    nnz = parse_size(args.size)
    print("machine", machine(), "| load average", os.getloadavg())
    print("mfrec", mfrec.build_info(), f"| {nnz} ratings, {N_USERS} x {N_ITEMS}")
    folder = parquet_files(nnz, args.cache, args.parts)
    for algorithm in args.algorithms.split(","):
        out = os.path.join(args.cache, f"single-{algorithm}.npz")
        ones, manys = [], []
        for _ in range(args.repeat):
            ones.append(json.loads(subprocess.run(
                [sys.executable, __file__, "--cache", args.cache, "--single", str(nnz), algorithm,
                 out], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]))
            print("  single-process done | load average", os.getloadavg(), flush=True)
            many, model = blocked(folder, algorithm)
            manys.append(many)
            print("  dask done | load average", os.getloadavg(), flush=True)
        report(algorithm, ones, manys, model, mfrec.Model.load(out))
    print("load average at the end", os.getloadavg())
    dry_run()


if __name__ == "__main__":
    main()
