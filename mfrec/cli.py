"""The command line: ``mfrec`` / ``python -m mfrec``.

Without a subcommand it runs the Level-1 walk-through: SGD matrix
factorization on MovieLens 100K (random 80/20 split, seed 42), the
convergence table, the test RMSE and the top-10 movies for one user.
Subcommands: ``fit``, ``evaluate``, ``recommend`` and ``demo`` (the web
page of :mod:`mfrec.demo`); ``mfrec COMMAND --help`` describes each. They
work on MovieLens (``--dataset``) or on a ratings file (``--ratings``),
whose ids may be integers or text; a saved model remembers which. Bad
input ends with a one-line message on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

import numpy as np

from ._cliargs import (READ_FLAGS, Parser, _fold_list, _folder, _fraction, _metric_list,
                       _nonempty, _port, _positive_float, _positive_int, _save_path,
                       add_format_argument, add_model_arguments, add_ratings_arguments,
                       check_port, read_own, write_rows)
from ._scoring import parse_metric, score
from ._training import fit_seed
from .algorithms import get_algorithm
from .datasets import NAMES, RELEASES, load_movielens
from .demo import Recommender, catalogue, launch, parse_id, plain, source
from .model import Model
from .model_selection import PredefinedFolds, train_test_split

COMMANDS = ("fit", "evaluate", "recommend", "demo")
#: hyper-parameters with a flag of their own (any other: --param KEY=VALUE)
MODEL_FLAGS = ("factors", "epochs", "learning_rate", "regularization", "seed", "n_threads")
#: what evaluate measures unless told (rmse and mae only for models that predict ratings)
RANKING_METRICS = ["precision@10", "recall@10", "ndcg@10"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mfrec",
        description="Matrix-factorization recommendation. Without a subcommand: the "
                    "Level-1 walk-through (SGD on MovieLens, convergence table, top-10).",
        epilog="'mfrec COMMAND --help' describes a subcommand.")
    add_walkthrough_arguments(parser)
    parser.set_defaults(run=run_walkthrough)
    sub = parser.add_subparsers(dest="command", title="subcommands", metavar="COMMAND")
    for add in (add_fit_parser, add_evaluate_parser, add_recommend_parser, add_demo_parser):
        add(sub)
    return parser


def add_fit_parser(sub) -> None:
    fit = sub.add_parser(
        "fit", help="train a model (and save it)",
        description="Train a model on MovieLens or a ratings file: all ratings, a predefined "
                    "fold or a random hold-out (then the validation RMSE is shown per epoch).")
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
    fit.add_argument("--save", type=_save_path, metavar="PATH",
                     help="write the model to PATH (.npz); it remembers its data set")
    fit.set_defaults(run=run_fit)


def add_evaluate_parser(sub) -> None:
    evaluate = sub.add_parser(
        "evaluate", help="error and ranking metrics on a random split or the predefined folds",
        description="Fit on the training part of each split and score its test part.")
    add_data_arguments(evaluate)
    add_model_arguments(evaluate)
    splits = evaluate.add_mutually_exclusive_group()
    splits.add_argument("--folds", type=_fold_list, help="comma-separated predefined folds, or "
                                        "'all' (100k: u1..u5, the five-fold cross-validation; "
                                        "also ua, ub)")
    splits.add_argument("--test-size", type=_fraction, default=0.2,
                        help="random hold-out fraction when no --folds (default: %(default)s)")
    evaluate.add_argument("--split-seed", type=int, default=42,
                          help="seed of the random split (default: %(default)s)")
    evaluate.add_argument("--metrics", type=_metric_list, metavar="LIST",
                          help="comma-separated: rmse, mae, and precision, recall, ndcg, map, "
                               "hit_rate, coverage at a list length (ndcg@10) (default: "
                               f"rmse,mae,{','.join(RANKING_METRICS)}; without rmse and mae "
                               "for popular and wals, which do not predict ratings)")
    evaluate.add_argument("--threshold", type=float, default=4.0,
                          help="test ratings from this value up are relevant to ranking "
                               "metrics (default: %(default)s)")
    add_format_argument(evaluate)
    evaluate.set_defaults(run=run_evaluate)


def add_recommend_parser(sub) -> None:
    recommend = sub.add_parser(
        "recommend", help="top-N items for a user from a saved model",
        description="Top-N items for one user of a model saved by 'mfrec fit --save'; "
                    "items the user rated in training are left out. A model of MovieLens "
                    "shows titles when the dataset is at hand.")
    recommend.add_argument("model", type=_nonempty, help="model file (.npz)")
    recommend.add_argument("user", help="user id, as in the data (42, or u42 for a model "
                                        "of text ids)")
    recommend.add_argument("-n", "--n", type=_positive_int, default=10,
                           help="number of items (default: %(default)s)")
    recommend.add_argument("--include-seen", action="store_true",
                           help="keep the items the user rated in training")
    recommend.add_argument("--dataset", choices=list(RELEASES),
                           help="MovieLens dataset the model was trained on: adds titles "
                                "(default: the one the model file names)")
    recommend.add_argument("--data-home", type=_folder, help="folder holding the dataset")
    add_format_argument(recommend)
    recommend.set_defaults(run=run_recommend)


def add_demo_parser(sub) -> None:
    demo = sub.add_parser(
        "demo", help="web page: recommendations, a new user, similar items",
        description="Serve the web demo (needs: pip install 'mfrec[demo]'). Without "
                    "--model it first trains one on all ratings of the data.")
    demo.add_argument("--model", type=_nonempty, metavar="PATH",
                      help="a saved model (.npz) instead of training; its data set unless "
                           "--dataset or --ratings says otherwise")
    add_data_arguments(demo)
    add_model_arguments(demo)
    demo.add_argument("-n", "--n", type=_positive_int, default=10,
                      help="recommendations shown (default: %(default)s)")
    demo.add_argument("--host", type=_nonempty, default="127.0.0.1",
                      help="address to listen on (default: %(default)s, this machine only)")
    demo.add_argument("--port", type=_port, default=7860, help="port (default: %(default)s)")
    demo.set_defaults(run=run_demo)


def add_data_arguments(parser, own_ratings=True):
    parser.add_argument("--dataset", choices=list(RELEASES), default="100k",
                        help="MovieLens dataset (default: 100k)")
    parser.set_defaults(dataset=None)  # None: not given (see data_source)
    parser.add_argument("--data-home", type=_folder, default=None,
                        help="folder holding the dataset (default: $MFREC_DATA, the cache, "
                             "or download)")
    if own_ratings:
        add_ratings_arguments(parser)


def add_walkthrough_arguments(parser):
    add_data_arguments(parser, own_ratings=False)
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
    name = args.dataset or "100k"
    data = load_movielens(name, data_home=args.data_home)
    train, test = train_test_split(data.ratings, test_size=0.2, seed=args.seed)
    print(f"MovieLens {name}: {len(data.ratings):,} ratings; train {len(train):,}, "
          f"test {len(test):,} (random 80/20, seed {args.seed})")
    print(f"SGD: k={args.factors}, learning_rate={args.learning_rate}, no bias, no "
          f"regularization, init uniform*0.01, early stopping patience {args.patience}\n")
    model = Model("sgd", factors=args.factors, learning_rate=args.learning_rate,
                  regularization=0.0, biases=False, init="uniform", init_scale=0.01,
                  epochs=args.epochs, seed=args.seed)
    print(f"{'epoch':>5}  {'train loss':>10}  {'train RMSE':>10}  {'test RMSE':>9}")

    def show(_, row):
        print(f"{row['epoch']:>5}  {row['train_loss']:>10.4f}  {row['train_rmse']:>10.4f}  "
              f"{row['valid_rmse']:>9.4f}", flush=True)

    t0 = time.perf_counter()
    model.fit(train, validation=test, early_stopping=args.patience, callback=show)
    seconds = time.perf_counter() - t0
    best = model.history[model.best_iteration_ - 1]
    print(f"\nbest test RMSE {best['valid_rmse']:.4f} at epoch {model.best_iteration_} "
          f"(stopped after {len(model.history)} epochs, {seconds:.2f} s; best factors kept)")
    score = model.score(test)
    print(f"test RMSE of the final model: {score['rmse']:.4f}, MAE {score['mae']:.4f}")
    print(why_figures_differ(model, train, test))

    if args.user not in set(model.user_ids.tolist()):
        raise ValueError(f"user {args.user} has no training ratings")
    items, scores = model.recommend(args.user, n=args.n)
    print(f"Top-{args.n} movies for user {args.user} (not rated by them):")
    for rank, (item, score) in enumerate(zip(items, scores), 1):
        print(f"{rank:>3}. {data.title(item):<60} {score:.2f}")
    return 0


def why_figures_differ(model, train, test) -> str:
    """Why the walk-through's figures are not the Level-1 document's, with
    the count of test ratings whose movie has no training rating and the
    test RMSE had they been predicted from untrained factors (near 0)."""
    unseen = ~np.isin(test.item, train.item) | ~np.isin(test.user, train.user)
    predicted = model.predict(test.user, test.item)
    as_zero = np.sqrt(np.mean((np.where(unseen, 0.0, predicted) - test.rating) ** 2))
    return (
        "\nThe Level-1 document reports a best test RMSE of 0.9388 at epoch 13. Two things "
        "make\nthese figures differ from its own:\n"
        "  - update order: each epoch visits the training ratings in an order drawn from "
        "mfrec's own\n    generator, so the steps differ from any other program's from the "
        "first epoch on;\n"
        f"  - test items unseen in training: {unseen.sum()} test ratings are of a movie or user "
        "with no training\n    rating. mfrec predicts the mean training rating "
        f"({model.rating_mean_:.2f}) for them; predicted from untrained\n    factors (near 0) "
        f"instead, as a model set up over every id would, the test RMSE is {as_zero:.4f}.\n")


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
    if "seed" not in params:
        print(f"seed {model.seed_} (drawn at random; --seed {model.seed_} repeats this fit)",
              flush=True)
    return model


def data_source(args, model=None) -> dict:
    """Where the ratings come from, as a model file remembers it:
    {"dataset": name} or {"ratings": path, read_ratings' options}. The
    flags say it, else `model`'s metadata, else MovieLens 100K."""
    given = [f"--{flag.replace('_', '-')}" for flag in (*READ_FLAGS, "string_ids")
             if getattr(args, flag, None)]
    ratings = getattr(args, "ratings", None)
    if ratings and args.dataset:
        raise ValueError("give --ratings FILE or --dataset, not both")
    if given and not ratings:
        raise ValueError(f"{given[0]} describes the ratings file: give --ratings FILE too")
    if ratings:
        return {"ratings": os.path.abspath(ratings), "string_ids": args.string_ids,
                **{key: getattr(args, flag) for flag, key in READ_FLAGS.items()}}
    remembered = model.metadata if model is not None else {}
    if args.dataset is None and isinstance(remembered.get("ratings"), str):
        return dict(remembered)
    return {"dataset": args.dataset or remembered.get("dataset") or "100k"}


def load_data(where: dict, data_home=None):
    """(ratings, MovieLens or None for a ratings file) from `data_source`."""
    if "ratings" in where:
        return read_own(where), None
    data = load_movielens(where["dataset"], data_home=data_home)
    return data.ratings, data


def run_fit(args) -> int:
    if args.early_stopping and not (args.fold or args.test_size):
        raise ValueError("--early-stopping needs validation data: --fold or --test-size")
    where = data_source(args)
    ratings, data = load_data(where, args.data_home)
    params = model_params(args)
    if args.fold:
        if data is None:
            raise ValueError("--fold: a ratings file has no predefined folds; hold out a "
                             "random part with --test-size")
        train_ratings, validation = data.fold(args.fold)
    elif args.test_size:
        train_ratings, validation = train_test_split(ratings, test_size=args.test_size,
                                                     seed=args.split_seed)
    else:
        train_ratings, validation = ratings, None
    model = train(args, params, train_ratings, validation, args.early_stopping)
    if args.save:
        model.metadata.update(where)
        model.save(args.save)
        print(f"saved {args.save}")
    return 0


def evaluation_metrics(args) -> list:
    """--metrics, or the default; rmse and mae refused for a model that
    does not predict ratings (popular and wals rank by a score)."""
    rates = get_algorithm(args.algorithm).clip_predictions  # explicit-rating models
    if args.metrics is None:
        return (["rmse", "mae"] if rates else []) + RANKING_METRICS
    errors = [m for m in args.metrics if parse_metric(m)[1] is None]
    if errors and not rates:
        raise ValueError(f"--metrics {errors[0]}: {args.algorithm!r} does not predict ratings "
                         "(it ranks items by a score); measure it with ranking metrics such "
                         "as ndcg@10")
    return args.metrics


def run_evaluate(args) -> int:
    where = data_source(args)
    ratings, data = load_data(where, args.data_home)
    params, metrics = model_params(args), evaluation_metrics(args)
    if args.folds:
        if data is None or not data.fold_names:
            shown = source(data) if data is not None else "a ratings file"
            raise ValueError(f"{shown} has no predefined folds: evaluate on a random split "
                             "(--test-size)")
        names = PredefinedFolds(data).fold_names if args.folds == "all" else args.folds
        splits = [(name, *data.fold(name)) for name in names]
    else:
        splits = [(f"random {args.test_size:g}",
                   *train_test_split(ratings, test_size=args.test_size, seed=args.split_seed))]
    if "seed" not in params:  # one seed for every split, said so it can be repeated
        params["seed"] = fit_seed(None)
        print(f"seed {params['seed']} (drawn at random; --seed {params['seed']} repeats this "
              "evaluation)", file=sys.stderr)
    rows = []
    for name, train_ratings, test in splits:
        t0 = time.perf_counter()
        model = Model(args.algorithm, **params).fit(train_ratings)
        seconds = time.perf_counter() - t0
        rows.append({"split": name, **score(model, test, metrics, args.threshold),
                     "fit_seconds": seconds})
    if len(rows) > 1:
        rows.append({"split": "mean", **{key: float(np.mean([r[key] for r in rows]))
                                         for key in [*metrics, "fit_seconds"]}})
    write_rows(rows, args.format)
    return 0


def catalogue_for(args, model):
    """The MovieLens catalogue that titles `model`'s items: --dataset, else
    the one its file names when it is at hand (else a note, and None)."""
    if args.dataset:
        if model.item_ids.dtype.kind not in "iu":
            raise ValueError(f"--dataset {args.dataset}: the model's items have text ids, not "
                             "MovieLens movie ids")
        return load_movielens(args.dataset, data_home=args.data_home)
    name = model.metadata.get("dataset")
    if name not in NAMES:
        return None
    try:
        return load_movielens(name, data_home=args.data_home, download=False)
    except FileNotFoundError:
        print(f"mfrec: note: no titles: MovieLens {name} is not at hand (set MFREC_DATA "
              "or give --data-home)", file=sys.stderr)
        return None


def run_recommend(args) -> int:
    model = Model.load(args.model)
    user = parse_id(args.user, model.user_ids)
    items, scores = model.recommend(user, n=args.n, exclude_seen=not args.include_seen)
    if not len(items):
        print(f"mfrec: note: user {plain(user)} rated every item the model knows: nothing is "
              "left to recommend", file=sys.stderr)
    data = catalogue_for(args, model)
    rows = [{"rank": rank, "item": plain(item),
             **({"title": data.title(item)} if data else {}), "score": round(float(score), 4)}
            for rank, (item, score) in enumerate(zip(items, scores), 1)]
    write_rows(rows, args.format)
    return 0


def run_demo(args) -> int:
    if importlib.util.find_spec("gradio") is None:
        raise ValueError("the demo needs Gradio: pip install 'mfrec[demo]'")
    params = model_params(args)
    if args.model and params:
        raise ValueError("give either --model or training parameters, not both")
    check_port(args.host, args.port)  # before minutes of training, not after
    model = Model.load(args.model) if args.model else None
    where = data_source(args, model)
    ratings, data = load_data(where, args.data_home)
    if data is None:
        data = catalogue(ratings, os.path.basename(where["ratings"]))
    if model is None:
        model = train(args, params, ratings)
    launch(Recommender(model, data, n=args.n), host=args.host, port=args.port)
    return 0


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
