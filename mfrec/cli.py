"""The command line: ``mfrec`` / ``python -m mfrec``.

Without a subcommand it runs the Level-1 walk-through: SGD matrix
factorization on MovieLens 100K (random 80/20 split, seed 42), the
convergence table, the test RMSE and the top-10 movies for one user.
Subcommands: ``fit``, ``evaluate``, ``recommend`` and ``demo`` (the web
page of :mod:`mfrec.demo`); ``mfrec COMMAND --help`` describes each. Bad
input ends with a one-line message on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import sys
import time

import numpy as np

from .algorithms import ALGORITHMS, get_algorithm
from .datasets import load_movielens
from .demo import Recommender, launch
from .model import Model
from .model_selection import train_test_split


def _named(name):
    """Give a converter the name argparse shows: "invalid positive integer value: 'x'"."""
    def rename(convert):
        convert.__name__ = name
        return convert
    return rename


@_named("positive integer")
def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


@_named("positive number")
def _positive_float(text):
    value = float(text)
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


@_named("port number")
def _port(text):
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"must be a port number 1..65535, got {value}")
    return value


@_named("fraction")
def _fraction(text):
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


@_named("non-empty text")
def _nonempty(text):
    """A name, folder or address: an empty one would silently mean the default."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


@_named("list of folds")
def _fold_list(text):
    """'u1,u2' -> ['u1', 'u2']; 'all' stays 'all'."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected fold names separated by commas, got {text!r}")
    return "all" if names == ["all"] else names


@_named("model file name")
def _save_path(text):
    """The file `Model.save` will write (it adds .npz), refused when it
    would be hidden, a folder, or in a folder that does not exist."""
    path = text if text.endswith(".npz") else text + ".npz"
    if not text.strip() or text.endswith(("/", os.sep)) or os.path.basename(path) == ".npz":
        raise argparse.ArgumentTypeError(f"expected a file name, got {text!r}")
    for name in dict.fromkeys((text, path)):
        if os.path.isdir(name):
            raise argparse.ArgumentTypeError(f"{name} is a folder")
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise argparse.ArgumentTypeError(f"the folder of {text} does not exist")
    return path


@_named("KEY=VALUE")
def _param(text):
    """KEY=VALUE -> (key, value); VALUE read as bool, None, int, float or text."""
    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    word = value.strip().lower()
    if word in ("true", "false"):
        return key, word == "true"
    if word in ("none", "null"):
        return key, None
    for convert in (int, float):
        try:
            return key, convert(value)
        except ValueError:
            pass
    return key, value


class Parser(argparse.ArgumentParser):
    """Bad input: one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


COMMANDS = ("fit", "evaluate", "recommend", "demo")
#: hyper-parameters with a flag of their own (any other: --param KEY=VALUE)
MODEL_FLAGS = ("factors", "epochs", "learning_rate", "regularization", "seed", "n_threads")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mfrec",
        description="Matrix-factorization recommendation. Without a subcommand: the "
                    "Level-1 walk-through (SGD on MovieLens, convergence table, top-10).",
        epilog="'mfrec COMMAND --help' describes a subcommand.")
    add_walkthrough_arguments(parser)
    parser.set_defaults(run=run_walkthrough)
    sub = parser.add_subparsers(dest="command", title="subcommands", metavar="COMMAND")

    fit = sub.add_parser(
        "fit", help="train a model (and save it)",
        description="Train a model on MovieLens: all ratings, a predefined fold or a random "
                    "hold-out (then the validation RMSE is shown per epoch).")
    add_data_arguments(fit)
    add_model_arguments(fit)
    held_out = fit.add_mutually_exclusive_group()
    held_out.add_argument("--fold", type=_nonempty, help="train on this predefined fold's base set and "
                                         "validate on its test set (100k: u1..u5, ua, ub)")
    held_out.add_argument("--test-size", type=_fraction,
                          help="hold out this random fraction of the ratings for validation")
    fit.add_argument("--split-seed", type=int, default=42,
                     help="seed of the random hold-out (default: %(default)s)")
    fit.add_argument("--early-stopping", type=_positive_int, metavar="PATIENCE",
                     help="stop when the validation RMSE has not improved for PATIENCE "
                          "epochs and keep the best (needs --fold or --test-size)")
    fit.add_argument("--save", type=_save_path, metavar="PATH", help="write the model to PATH (.npz)")
    fit.set_defaults(run=run_fit)

    evaluate = sub.add_parser(
        "evaluate", help="RMSE and MAE on a random split or the predefined folds",
        description="Fit on the training part of each split and score its test part.")
    add_data_arguments(evaluate)
    add_model_arguments(evaluate)
    splits = evaluate.add_mutually_exclusive_group()
    splits.add_argument("--folds", type=_fold_list, help="comma-separated predefined folds, or 'all' "
                                        "(100k: u1..u5, ua, ub)")
    splits.add_argument("--test-size", type=_fraction, default=0.2,
                        help="random hold-out fraction when no --folds (default: %(default)s)")
    evaluate.add_argument("--split-seed", type=int, default=42,
                          help="seed of the random split (default: %(default)s)")
    add_format_argument(evaluate)
    evaluate.set_defaults(run=run_evaluate)

    recommend = sub.add_parser(
        "recommend", help="top-N movies for a user from a saved model",
        description="Top-N items for one user of a model saved by 'mfrec fit --save'; "
                    "items the user rated in training are left out.")
    recommend.add_argument("model", type=_nonempty, help="model file (.npz)")
    recommend.add_argument("user", type=int, help="raw user id")
    recommend.add_argument("-n", "--n", type=_positive_int, default=10,
                           help="number of items (default: %(default)s)")
    recommend.add_argument("--include-seen", action="store_true",
                           help="keep the items the user rated in training")
    recommend.add_argument("--dataset", choices=["100k", "1m", "10m", "20m", "25m", "32m", "latest-small", "latest"],
                           help="MovieLens dataset the model was trained on: adds titles")
    recommend.add_argument("--data-home", type=_nonempty, help="folder holding the dataset")
    add_format_argument(recommend)
    recommend.set_defaults(run=run_recommend)

    demo = sub.add_parser(
        "demo", help="web page: recommendations, a new user, similar movies",
        description="Serve the web demo (needs: pip install 'mfrec[demo]'). Without "
                    "--model it first trains one on all ratings of the dataset.")
    demo.add_argument("--model", type=_nonempty, metavar="PATH", help="a saved model (.npz) instead of training")
    add_data_arguments(demo)
    add_model_arguments(demo)
    demo.add_argument("-n", "--n", type=_positive_int, default=10,
                      help="recommendations shown (default: %(default)s)")
    demo.add_argument("--host", type=_nonempty, default="127.0.0.1",
                      help="address to listen on (default: %(default)s, this machine only)")
    demo.add_argument("--port", type=_port, default=7860, help="port (default: %(default)s)")
    demo.set_defaults(run=run_demo)
    return parser


def add_data_arguments(parser):
    parser.add_argument("--dataset", choices=["100k", "1m", "10m", "20m", "25m", "32m", "latest-small", "latest"], default="100k",
                        help="MovieLens dataset (default: %(default)s)")
    parser.add_argument("--data-home", type=_nonempty, default=None,
                        help="folder holding the dataset (default: $MFREC_DATA, the cache, "
                             "or download)")


def add_model_arguments(parser):
    group = parser.add_argument_group(
        "model", "Hyper-parameters left out take the algorithm's defaults "
                 "(python -c \"import mfrec; print(mfrec.Model.defaults('sgd'))\").")
    group.add_argument("--algorithm", choices=sorted(ALGORITHMS), default="sgd",
                       help="fitting method (default: %(default)s)")
    group.add_argument("--factors", type=_positive_int, help="latent factors k")
    group.add_argument("--epochs", type=_positive_int,
                       help="iterations: sgd/nmf epochs, als/wals iterations, bayes sweeps")
    group.add_argument("--learning-rate", type=_positive_float, help="SGD step")
    group.add_argument("--regularization", type=float, help="L2 weight")
    group.add_argument("--seed", type=int, help="random seed")
    group.add_argument("--n-threads", type=int, help="threads (0 = all cores)")
    group.add_argument("--param", type=_param, action="append", default=[],
                       metavar="KEY=VALUE", help="any other parameter, e.g. biases=false "
                                                 "(repeatable)")


def add_format_argument(parser):
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table",
                        help="output format (default: %(default)s)")

def add_walkthrough_arguments(parser):
    add_data_arguments(parser)
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
        raise ValueError(f"user {args.user} has no training ratings")
    items, scores = model.recommend(args.user, n=args.n)
    print(f"Top-{args.n} movies for user {args.user} (not rated by them):")
    for rank, (item, score) in enumerate(zip(items, scores), 1):
        print(f"{rank:>3}. {data.title(item):<60} {score:.2f}")
    return 0


# ---- subcommands -----------------------------------------------------------------

def model_params(args) -> dict:
    """The hyper-parameters given on the command line (flags and --param)."""
    params = {}
    for key, value in args.param:
        if key in params:
            raise ValueError(f"--param {key} given twice")
        params[key] = value
    for name in MODEL_FLAGS:
        value = getattr(args, name)
        if value is not None:
            if name in params:
                raise ValueError(f"{name} given twice (--{name.replace('_', '-')} and --param)")
            params[name] = value
    if args.epochs is not None:  # the iterations of whichever algorithm
        iterations = get_algorithm(args.algorithm).iterations_param
        if iterations is None:
            raise ValueError(f"--epochs: algorithm {args.algorithm!r} is a closed form, "
                             "without iterations")
        if iterations != "epochs" and iterations in params:
            raise ValueError(f"{iterations} given twice (--epochs and --param)")
        params[iterations] = params.pop("epochs")
    return params


def train(args, params, train_ratings, validation=None, early_stopping=None):
    """Fit `args.algorithm` with progress lines on stdout."""
    model = Model(args.algorithm, **params)
    print(f"fitting {model!r} on {len(train_ratings):,} ratings", flush=True)
    columns = ["epoch", "train_rmse"] + (["valid_rmse"] if validation is not None else [])
    print("  ".join(f"{c:>10}" for c in columns), flush=True)

    def show(_, row):
        print("  ".join(f"{row[c]:>10}" if c == "epoch" else f"{row[c]:>10.4f}"
                        for c in columns), flush=True)

    model.fit(train_ratings, validation=validation, early_stopping=early_stopping,
              callback=show)
    if get_algorithm(args.algorithm).iterations_param is None:
        show(model, model.history[0])  # a closed form has no per-iteration callback
    seconds = sum(row["seconds"] for row in model.history)
    kept = model.history[model.best_iteration_ - 1]
    line = f"done in {seconds:.2f} s; kept epoch {model.best_iteration_}"
    if validation is not None:
        line += f", validation RMSE {kept['valid_rmse']:.4f}"
    print(line, flush=True)
    return model


def run_fit(args) -> int:
    if args.early_stopping and not (args.fold or args.test_size):
        raise ValueError("--early-stopping needs validation data: --fold or --test-size")
    data = load_movielens(args.dataset, data_home=args.data_home)
    params = model_params(args)
    if args.fold:
        train_ratings, validation = data.fold(args.fold)
    elif args.test_size:
        train_ratings, validation = train_test_split(data.ratings, test_size=args.test_size,
                                                     seed=args.split_seed)
    else:
        train_ratings, validation = data.ratings, None
    model = train(args, params, train_ratings, validation, args.early_stopping)
    if args.save:
        model.save(args.save)
        print(f"saved {args.save}")
    return 0


def run_evaluate(args) -> int:
    data = load_movielens(args.dataset, data_home=args.data_home)
    params = model_params(args)
    if args.folds:
        names = list(data.fold_names) if args.folds == "all" else args.folds
        if not names:
            raise ValueError(f"MovieLens {args.dataset} has no predefined folds")
        splits = [(name, *data.fold(name)) for name in names]
    else:
        splits = [(f"random {args.test_size:g}",
                   *train_test_split(data.ratings, test_size=args.test_size,
                                     seed=args.split_seed))]
    rows = []
    for name, train_ratings, test in splits:
        t0 = time.perf_counter()
        model = Model(args.algorithm, **params).fit(train_ratings)
        seconds = time.perf_counter() - t0
        rows.append({"split": name, **model.score(test), "fit_seconds": seconds})
    if len(rows) > 1:
        rows.append({"split": "mean", **{key: float(np.mean([r[key] for r in rows]))
                                         for key in ("rmse", "mae", "fit_seconds")}})
    write_rows(rows, args.format)
    return 0


def run_recommend(args) -> int:
    model = Model.load(args.model)
    items, scores = model.recommend(args.user, n=args.n, exclude_seen=not args.include_seen)
    data = load_movielens(args.dataset, data_home=args.data_home) if args.dataset else None
    rows = [{"rank": rank, "item": int(item),
             **({"title": data.title(item)} if data else {}), "score": float(score)}
            for rank, (item, score) in enumerate(zip(items, scores), 1)]
    write_rows(rows, args.format)
    return 0


def run_demo(args) -> int:
    if importlib.util.find_spec("gradio") is None:
        raise ValueError("the demo needs Gradio: pip install 'mfrec[demo]'")
    params = model_params(args)
    if args.model and params:
        raise ValueError("give either --model or training parameters, not both")
    data = load_movielens(args.dataset, data_home=args.data_home)
    model = Model.load(args.model) if args.model else train(args, params, data.ratings)
    launch(Recommender(model, data, n=args.n), host=args.host, port=args.port)
    return 0


def write_rows(rows, fmt, out=None):
    """Rows (dicts with the same keys) as an aligned table, CSV or JSON."""
    out = out or sys.stdout
    if fmt == "json":
        json.dump(rows, out, indent=2, ensure_ascii=False)
        out.write("\n")
        return
    columns = list(rows[0]) if rows else []
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    cells = [[f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in columns]
             for row in rows]
    widths = [max([len(c)] + [len(r[j]) for r in cells]) for j, c in enumerate(columns)]
    numeric = [all(isinstance(row[c], (int, float)) for row in rows) for c in columns]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric)).rstrip()

    print(line(columns), file=out)
    for r in cells:
        print(line(r), file=out)


# The exceptions that mean the input was wrong, not that mfrec is: each
# reaches the user as one line and exit status 2. ValueError and TypeError
# are what the library raises for a bad argument (naming it; --param can
# hand any parameter any type), KeyError an id the model or catalogue lacks,
# FloatingPointError a fit that diverged (too large a learning rate),
# MemoryError a model too large for this machine, OSError a file, folder or
# port (missing, no access, in use). Any other exception is a bug in mfrec
# and keeps its traceback.
USER_ERRORS = (ValueError, TypeError, KeyError, FloatingPointError, MemoryError, OSError)


def error_message(error: BaseException) -> str:
    """`error` as one line: a KeyError without its quotes, a missing file by name."""
    if isinstance(error, KeyError) and error.args:
        text = str(error.args[0])
    elif isinstance(error, OSError) and error.filename is not None and error.strerror:
        why = "no such file" if isinstance(error, FileNotFoundError) else error.strerror
        text = f"{error.filename}: {why}"
    else:
        text = str(error)
    return " ".join(text.split()) or type(error).__name__


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command and argv[0] != args.command:
        parser.error(f"the options before {args.command!r} are the walk-through's; "
                     f"write the subcommand first: mfrec {args.command} [options]")
    try:
        return args.run(args)
    except USER_ERRORS as e:
        print(f"mfrec: error: {error_message(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mfrec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
