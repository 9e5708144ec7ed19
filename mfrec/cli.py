"""The command line: ``mfrec`` / ``python -m mfrec``.

Without a subcommand it runs the Level-1 walk-through: SGD matrix
factorization on MovieLens 100K (random 80/20 split, seed 42), the
convergence table, the test RMSE and the top-10 movies for one user.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mfrec",
        description="Matrix-factorization recommendation. Without a subcommand: the "
                    "Level-1 walk-through (SGD on MovieLens, convergence table, top-10).")
    add_walkthrough_arguments(parser)
    parser.set_defaults(run=run_walkthrough)
    return parser


def add_walkthrough_arguments(parser):
    parser.add_argument("--dataset", choices=["100k", "latest-small"], default="100k",
                        help="MovieLens dataset (default: %(default)s)")
    parser.add_argument("--data-home", default=None,
                        help="folder holding the dataset (default: $MFREC_DATA, the cache, "
                             "or download)")
    parser.add_argument("--factors", type=_positive_int, default=100,
                        help="latent factors k (default: %(default)s)")
    parser.add_argument("--epochs", type=_positive_int, default=50,
                        help="maximum epochs (default: %(default)s)")
    parser.add_argument("--learning-rate", type=_positive_float, default=0.02,
                        help="SGD step; the Level-1 document's 0.01 with its 2·e·q gradient "
                             "is 0.02 here (default: %(default)s)")
    parser.add_argument("--patience", type=_positive_int, default=3,
                        help="early-stopping patience in epochs (default: %(default)s)")
    parser.add_argument("--user", type=int, default=1,
                        help="user to recommend for (default: %(default)s)")
    parser.add_argument("--n", type=_positive_int, default=10,
                        help="number of recommendations (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")


def run_walkthrough(args) -> int:
    from . import Model, load_movielens, train_test_split

    data = load_movielens(args.dataset, data_home=args.data_home)
    train, test = train_test_split(data.ratings, test_size=0.2, seed=args.seed)
    print(f"MovieLens {args.dataset}: {len(data.ratings):,} ratings; train {len(train):,}, "
          f"test {len(test):,} (random 80/20, seed {args.seed})")
    print(f"SGD: k={args.factors}, learning_rate={args.learning_rate}, no bias, no "
          f"regularization, init uniform*0.01, early stopping patience {args.patience}\n")
    model = Model("sgd", factors=args.factors, learning_rate=args.learning_rate,
                  regularization=0.0, biases=False, init="uniform", init_scale=0.01,
                  epochs=args.epochs, seed=args.seed)
    print(f"{'epoch':>5}  {'train loss':>10}  {'test RMSE':>9}")

    def show(_, row):
        print(f"{row['epoch']:>5}  {row['train_loss']:>10.4f}  {row['valid_rmse']:>9.4f}",
              flush=True)

    t0 = time.perf_counter()
    model.fit(train, validation=test, early_stopping=args.patience, callback=show)
    seconds = time.perf_counter() - t0
    best = model.history[model.best_iteration_ - 1]
    print(f"\nbest test RMSE {best['valid_rmse']:.4f} at epoch {model.best_iteration_} "
          f"(stopped after {len(model.history)} epochs, {seconds:.2f} s; best factors kept)")
    score = model.score(test)
    print(f"test RMSE of the final model: {score['rmse']:.4f}, MAE {score['mae']:.4f}\n")

    if args.user not in set(model.user_ids.tolist()):
        print(f"mfrec: user {args.user} has no training ratings", file=sys.stderr)
        return 2
    items, scores = model.recommend(args.user, n=args.n)
    print(f"Top-{args.n} movies for user {args.user} (not rated by them):")
    for rank, (item, score) in enumerate(zip(items, scores), 1):
        print(f"{rank:>3}. {data.title(item):<60} {score:.2f}")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, KeyError, FileNotFoundError) as e:
        print(f"mfrec: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mfrec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
