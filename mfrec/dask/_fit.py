"""The blocked fit: plan from the partitions' ids, cut the ratings into user
and item blocks that stay on their workers, then alternate half-steps that
ship each block the other side's rows it needs (see _plan) and solve them
with the single-process kernel. The driver keeps only futures and sums."""
from __future__ import annotations

import math
import operator
import time
from typing import Any, Optional

import numpy as np

import distributed
from distributed import client as dask_client

from .._state import fitting
from .._training import fit_seed
from .._vocab import same_kind
from ..algorithms import get_algorithm
from . import _tasks
from ._plan import BROADCAST_LIMIT, Layout, check_choice, exchanges, ranges

SIDES = ("user", "item")
RETRIES = 3  # recoveries from lost workers in one fit
OTHER = {"user": "item", "item": "user"}


# what a task submitted on top of a lost worker's results raises (a
# gather of several raises the second, in the releases that have it)
LOST = tuple(getattr(dask_client, name) for name in ("FutureCancelledError",
                                                     "FuturesCancelledError")
             if hasattr(dask_client, name))


def scatter(client, obj, broadcast: bool = False):
    """A future of `obj` on the workers (on all of them if `broadcast`, so
    that one worker's loss leaves a copy), under a key of its own."""
    return client.scatter([obj], broadcast=broadcast, hash=False)[0]


def merge_ids(summaries: list, side: str):
    """(sorted ids of `side`, their rating counts) from the partitions'."""
    parts = [s[side] for s in summaries if len(s[side][0])]
    for p in parts[1:]:
        same_kind(p[0], parts[0][0], f"fit: the {side} ids of one partition",
                  "those of another")
    ids, inverse = np.unique(np.concatenate([p[0] for p in parts]), return_inverse=True)
    counts = np.bincount(inverse.reshape(-1), weights=np.concatenate([p[1] for p in parts]),
                         minlength=len(ids)).astype(np.int64)
    return ids, counts


class BlockedFit:
    """One fit on a client: `parts` are the partitions (delayed or futures)."""

    def __init__(self, client, model, parts, columns: dict, n_blocks: Optional[int],
                 exchange: str, broadcast_limit: int):
        check_choice(exchange)
        self.client, self.model, self.parts, self.columns = client, model, parts, columns
        self.params = dict(model.get_params())
        algorithm = self.params.pop("algorithm")
        if algorithm not in ("als", "wals"):
            raise ValueError(f"mfrec.dask.fit: model: algorithm must be 'als' or 'wals', "
                             f"got {algorithm!r}")
        self.solver: Any = get_algorithm(algorithm)(dict(self.params))  # an _Alternating
        self.workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        self.n_workers = max(1, len(self.workers))
        self.n_blocks = self.n_workers if n_blocks is None else n_blocks
        if isinstance(self.n_blocks, bool) or not isinstance(self.n_blocks, (int, np.integer)) \
                or self.n_blocks < 1:
            raise ValueError(f"n_blocks must be an integer >= 1, got {n_blocks!r}")
        self.exchange, self.limit = exchange, broadcast_limit
        self.where = "fit"

    def submit(self, fn, *args, **kwargs):
        return self.client.submit(fn, *args, pure=False, **kwargs)

    def worker(self, b: int):
        """The worker block b of a side prefers (blocks spread round-robin)."""
        workers = self.workers
        return dict(workers=[workers[b % len(workers)]], allow_other_workers=True) \
            if workers else {}

    def plan(self):
        """Vocabulary, counts and the layout from one pass over the data."""
        summaries = self.client.gather(self.client.compute(
            [_delayed(_tasks.summarize)(p, self.columns, self.where) for p in self.parts]))
        n = sum(s["n"] for s in summaries)
        if n == 0:
            raise ValueError("fit: no ratings given (every partition is empty)")
        self.n = n
        self.mean = math.fsum(s["sum"] for s in summaries) / n
        self.rating_range = (min(s["low"] for s in summaries), max(s["high"] for s in summaries))
        self.vocab, self.counts = {}, {}
        for side in SIDES:
            self.vocab[side], self.counts[side] = merge_ids(summaries, side)
        k = self.params["factors"]
        n_users, n_items = len(self.vocab["user"]), len(self.vocab["item"])
        self.solver.check_data(_Shape(n_users, n_items, self.rating_range))
        biases = bool(self.params.get("biases"))
        row_bytes = 4 * (k + biases)
        # a row's solve costs about its ratings, plus for Cholesky about k
        # ratings' worth (its dense k x k system; measured 0.5k to 0.9k);
        # a CG row's own work is a few k-vectors a step, next to nothing
        per_row = k if self.solver.half_step_kwargs()["solver"] == "cholesky" else 1
        self.layout = Layout(n_users, n_items, n, k, self.n_workers, biases,
                             {side: ranges(self.counts[side] + per_row, self.n_blocks)
                              for side in SIDES},
                             exchanges(n_users, n_items, row_bytes, self.exchange, self.limit))

    def build(self):
        """Cut every partition into the pieces of the user blocks, build
        each user block's CSR on its worker, then each item block's from
        the user blocks' pieces (the partitions' pieces are gone by then)."""
        client, layout = self.client, self.layout
        self.vocab_f = scatter(client, self.vocab, broadcast=True)
        weights = self.solver.weights_from_counts(self.counts["user"], self.counts["item"])
        self.weights_f = scatter(client, dict(zip(SIDES, weights)), broadcast=True)
        splits = client.compute([_delayed(_tasks.split)(p, self.columns, self.where,
                                                        self.vocab_f, layout.bounds["user"])
                                 for p in self.parts])
        n_user_blocks = len(layout.bounds["user"]) - 1
        self.blocks = {"user": self.build_side(
            "user", [[self.submit(_tasks.piece, s, b) for s in splits]
                     for b in range(n_user_blocks)])}
        del splits
        self.blocks["item"] = self.build_side("item", self.item_sources())
        # sealed once the pieces are gone, where the build's peak is not
        for side in SIDES:
            self.blocks[side] = self.wait_for([self.submit(_tasks.sealed_block, blk,
                                                           **self.worker(b))
                                               for b, blk in enumerate(self.blocks[side])])
        infos = client.gather([self.submit(_tasks.block_info, blk)
                               for side in SIDES for blk in self.blocks[side]])
        for side, chunk in (("user", infos[:n_user_blocks]), ("item", infos[n_user_blocks:])):
            if layout.exchange[side] == "routed":
                layout.needed[side] = np.array([i["needed"] for i in chunk])
        # each block's list of the other side's rows, once (routed blocks)
        self.needed = {side: [self.submit(operator.itemgetter("needed"), blk)
                              for blk in self.blocks[side]] for side in SIDES}

    def item_sources(self) -> list:
        """For each item block, its share of every user block (in their
        order): the user block itself where both lie on one worker (read
        in place), else its piece of that user block's transpose."""
        bounds, W = self.layout.bounds["item"], self.n_workers
        n_item_blocks = len(bounds) - 1
        sources = []
        for a, blk in enumerate(self.blocks["user"]):
            wanted = [b for b in range(n_item_blocks) if (b - a) % W]
            cut = self.submit(_tasks.transpose, blk, bounds, wanted,
                              **self.worker(a)) if wanted else None
            sources.append([self.submit(_tasks.piece, cut, b) if b in wanted else blk
                            for b in range(n_item_blocks)])
        return [list(s) for s in zip(*sources)]

    def build_side(self, side: str, parts: list) -> list:
        """The blocks of `side`, block b from the futures parts[b]; they
        wait until built, so that the parts can go. Item blocks are stacked
        from the user blocks' shares, with the item counts of the plan."""
        bounds = self.layout.bounds[side]
        counts = self.counts["item"] if side == "item" else None
        blocks = [self.submit(_build, side, int(lo), int(hi), len(self.vocab[OTHER[side]]),
                              self.vocab_f, self.layout.exchange[side] == "routed",
                              self.weights_f, None if counts is None else counts[lo:hi],
                              *parts[b], **self.worker(b))
                  for b, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))]
        return self.wait_for(blocks)

    @staticmethod
    def wait_for(futures: list) -> list:
        """futures, once all are done (so that their inputs can go)."""
        distributed.wait(futures)
        return futures

    def start(self, seed: int):
        """The starting states: item factors as the single-process fit
        draws them, users at zero, zero biases."""
        p = self.params
        biases = bool(p.get("biases"))
        self.offset = self.mean if biases else 0.0
        self.states = {}
        for side, stream in (("user", None), ("item", 1)):
            bounds = self.layout.bounds[side]
            self.states[side] = [
                self.submit(_tasks.initial_state, int(bounds[b]), int(bounds[b + 1]),
                            p["factors"], p["init_scale"], seed if stream else None, 1, biases,
                            **self.worker(b))
                for b in range(len(bounds) - 1)]
        self.kwargs = self.solver.half_step_kwargs()

    def others(self, side: str) -> list:
        """For each block of `side`: the other side's rows it receives."""
        other, layout = OTHER[side], self.layout
        states = self.states[other]
        if layout.exchange[side] == "broadcast":
            # every block's task joins the states itself: a join on one
            # worker would be sent whole to the others, and land misaligned
            # there (the core then copies it again)
            return [states] * len(self.blocks[side])
        bounds = layout.bounds[other]
        return [[self.submit(_tasks.take_rows, state, need, int(bounds[c]), int(bounds[c + 1]))
                 for c, state in enumerate(states)] for need in self.needed[side]]

    def half_step(self, side: str, loss: bool) -> dict:
        """Solve every block of `side`; the sums of the kernel's stats."""
        self.states[side], stats = self.solve(side, loss)
        return stats

    def solve(self, side: str, loss: bool):
        """New states of the blocks of `side`, and the sums of their stats."""
        gram = None
        if self.kwargs["unobserved_weight"] > 0 and self.layout.exchange[side] == "routed":
            gram = self.submit(_tasks.sum_grams, *[self.submit(_tasks.gram, s)
                                                   for s in self.states[OTHER[side]]])
        others = self.others(side)
        states = [
            self.submit(_tasks.half_step, blk, state, rows, gram, self.offset, self.kwargs, loss)
            for blk, state, rows in zip(self.blocks[side], self.states[side], others)]
        stats = self.client.gather([self.submit(_tasks.stats_of, s) for s in states])
        return states, {key: math.fsum(s[key] for s in stats) for key in ("data", "reg", "sse")}

    def iteration(self, it: int) -> dict:
        """Users, then items; the history row."""
        t0 = time.perf_counter()
        users = self.half_step("user", loss=False)
        items = self.half_step("item", loss=True)
        return {"epoch": it + 1, "train_loss": items["data"] + items["reg"] + users["reg"],
                "train_rmse": math.sqrt(items["sse"] / self.n),
                "seconds": time.perf_counter() - t0,
                "exchange_bytes": self.layout.bytes_per_iteration()}

    def recover(self, seed: int, done: int) -> None:
        """After a lost worker: the blocks built anew from the data and the
        `done` iterations replayed from the start. Every task is pure, so
        the states are those that were lost (the scheduler re-runs lost
        tasks only while their inputs are held, and the fit releases the
        pieces and the older states it no longer needs)."""
        self.build()
        self.start(seed)
        for it in range(done):
            self.iteration(it)

    def run(self, seed: int, callback):
        """The iterations and the model's arrays, a lost worker recovered
        from at most RETRIES times."""
        history: list = []
        lost = 0
        while True:
            try:
                if lost:
                    self.recover(seed, len(history))
                while len(history) < self.params["iterations"]:
                    row = self.iteration(len(history))
                    history.append(row)
                    if callback is not None and callback(self.model, dict(row)) is False:
                        break
                return history, self.gather()
            except LOST as e:
                lost += 1
                if lost > RETRIES:
                    raise RuntimeError(f"fit: workers lost {lost} times; last: {e}") from e

    def gather(self):
        """The model's arrays and the training items of each user."""
        gathered = {side: self.client.gather(
            self.submit(_tasks.concat_states, *self.states[side])) for side in SIDES}
        seen = self.client.gather([self.submit(_tasks.seen_of, blk)
                                   for blk in self.blocks["user"]])
        counts = np.concatenate([s[0] for s in seen])
        indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
        core = {f"{side}_{what}": gathered[side][key] for side in SIDES
                for what, key in (("factors", "factors"), ("bias", "bias"))}
        core["global_mean"] = self.offset
        return core, (indptr, np.concatenate([s[1] for s in seen]).astype(np.int32))


class _Shape:
    """The sizes Algorithm.check_data reads (the data stays on the workers)."""

    def __init__(self, n_users, n_items, rating_range):
        self.n_users, self.n_items = n_users, n_items
        self.ratings = np.array(rating_range, np.float32)


def _delayed(fn):
    import dask

    return dask.delayed(fn, pure=True)


def _build(side, lo, hi, n_cols, vocab, routed, weights, counts, *parts):
    return _tasks.build_block(side, lo, hi, n_cols, vocab, routed, weights[side],
                              weights[OTHER[side]], counts, *parts)


def fit(model, parts, columns: dict, client, n_blocks=None, exchange="auto",
        broadcast_limit=BROADCAST_LIMIT, callback=None):
    """See mfrec.dask.fit."""
    with fitting(model):
        job = BlockedFit(client, model, parts, columns, n_blocks, exchange, broadcast_limit)
        seed = fit_seed(job.params["seed"])
        job.plan()
        job.build()
        job.start(seed)
        history, (core, seen) = job.run(seed, callback)
        model._install(core, seen, job.vocab["user"], job.vocab["item"], job.solver,
                       job.params, history=history, best_iteration_=len(history),
                       seed_=seed, rating_range_=job.rating_range, rating_mean_=job.mean)
    return model
