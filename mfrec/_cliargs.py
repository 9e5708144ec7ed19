"""The command line's parts: argument types that name what they expect,
the groups of flags the subcommands share, reading a ratings file of
one's own, the port check, and the output formats."""
from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import sys

import numpy as np

from ._read import read_ratings
from ._scoring import check_metrics
from .algorithms import ALGORITHMS
from .ratings import Ratings


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


@_named("folder")
def _folder(text):
    """A folder that exists: one that does not would be a typing mistake."""
    _nonempty(text)
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is not a folder" if os.path.exists(text)
                                         else f"no folder {text}")
    return text


@_named("separator")
def _separator(text):
    """One character or "::"; "tab" or a typed backslash-t is a tab."""
    sep = "\t" if text in ("tab", "\\t") else text
    if len(sep) != 1 and sep != "::":
        raise argparse.ArgumentTypeError(f"expected one character, '::' or 'tab', got {text!r}")
    return sep


@_named("list of metrics")
def _metric_list(text):
    """'rmse,ndcg@10' -> ['rmse', 'ndcg@10'], each a metric mfrec knows."""
    try:
        return check_metrics([name.strip() for name in text.split(",")])
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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


#: the flags that describe a ratings file -> read_ratings' arguments
READ_FLAGS = {"user_col": "user", "item_col": "item", "rating_col": "rating", "sep": "sep"}


def add_ratings_arguments(parser):
    group = parser.add_argument_group(
        "your own ratings", "A ratings file instead of MovieLens: CSV, TSV, '::'-separated, "
                            "compressed (.gz, .bz2, .xz) or Parquet, one rating a row "
                            "(python -c \"import mfrec; help(mfrec.read_ratings)\").")
    group.add_argument("--ratings", type=_nonempty, metavar="FILE",
                       help="the ratings file (instead of --dataset)")
    group.add_argument("--user-col", type=_nonempty, metavar="NAME",
                       help="its user column (default: user, userId or user_id)")
    group.add_argument("--item-col", type=_nonempty, metavar="NAME",
                       help="its item column (default: item, itemId, item_id, movieId or "
                            "movie_id)")
    group.add_argument("--rating-col", type=_nonempty, metavar="NAME",
                       help="its rating column (default: rating, ratings or score)")
    group.add_argument("--sep", type=_separator, help="field separator: one character, '::' "
                                                      "or 'tab' (default: guessed)")
    group.add_argument("--string-ids", action="store_true",
                       help="read ids as text even when they are numbers ('007' is then not "
                            "'7'); ids that are not whole numbers are read as text anyway")


def read_own(source: dict) -> Ratings:
    """The ratings of a file described by `source` (path under "ratings",
    read_ratings' arguments besides). Ids are read as integers, and read
    again as text when they are not (a file with another fault fails again,
    saying what); `source["string_ids"]` is set to what was read."""
    path = source["ratings"]
    options = {k: v for k, v in source.items() if k in READ_FLAGS.values() and v is not None}
    if not source.get("string_ids"):
        try:
            return read_ratings(path, **options)
        except (ValueError, TypeError):
            pass
    source["string_ids"] = True
    return read_ratings(path, string_ids=True, **options)


def check_port(host: str, port: int) -> None:
    """OSError saying so when `host`:`port` cannot be served on (taken, or
    not an address of this machine): checked before a model is trained."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
            s.bind((host, port))
    except OSError as e:
        why = e.strerror or str(e)
        raise OSError(f"cannot serve on {host}:{port}: {why} (is another program using "
                      f"port {port}? choose another with --port)") from None


def add_format_argument(parser):
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table",
                        help="output format (default: %(default)s)")


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
