"""The command line, run as a user runs it: ``python -m mfrec ...`` in a
subprocess, from a folder outside the source tree."""
import csv
import errno
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np

import pytest

import mfrec
from mfrec import cli

SMALL = ["--factors", "5", "--epochs", "3", "--seed", "1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, run_env):
    cwd = tmp_path_factory.mktemp("cli")

    def run(*args, timeout=120):
        proc = subprocess.run([sys.executable, "-m", "mfrec", *map(str, args)], cwd=cwd,
                              env=run_env, capture_output=True, text=True, timeout=timeout)
        return proc.returncode, proc.stdout, proc.stderr

    run.cwd = cwd
    return run


def fails(result, *words, output=False):
    """Bad input: exit status 2, one line on stderr naming the problem, and
    nothing on stdout unless the problem shows only after work (`output`)."""
    code, out, err = result
    assert code == 2, (code, out, err)
    assert output or out == "", out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.match(r"mfrec( [a-z]+)?: error: ", lines[0]), err
    for word in words:
        assert word in lines[0], err
    return lines[0]


@pytest.fixture(scope="module")
def saved(run):
    """A small model saved by `mfrec fit --save` on all of MovieLens 100K."""
    code, out, err = run("fit", *SMALL, "--save", "small")
    assert code == 0, err
    path = run.cwd / "small.npz"
    assert f"saved {'small.npz'}" in out
    return path


def run_main(capsys, *args):
    """`mfrec ARGS` in this process: (exit status, stdout, stderr)."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as e:  # argparse's errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


# ---- errors: one line, exit status 2 ---------------------------------------------

@pytest.mark.parametrize("error, line", [
    (ValueError("factors must be\n  >= 1"), "factors must be >= 1"),
    (TypeError("biases must be a bool"), "biases must be a bool"),
    (KeyError("user 7 is not in the model"), "user 7 is not in the model"),
    (FloatingPointError("SGD diverged at epoch 1"), "SGD diverged at epoch 1"),
    (MemoryError(), "MemoryError"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "m.npz"),
     "m.npz: no such file"),
    (PermissionError(errno.EACCES, "Permission denied", "m.npz"), "m.npz: Permission denied"),
    (OSError("address already in use"), "address already in use"),
])
def test_library_errors_reach_the_user_as_one_line(monkeypatch, capsys, error, line):
    def run_fit(args):
        print("fitting ...")
        raise error

    monkeypatch.setattr(cli, "run_fit", run_fit)
    code, out, err = run_main(capsys, "fit")
    assert code == 2 and out == "fitting ...\n"
    assert err == f"mfrec: error: {line}\n"


@pytest.mark.parametrize("bug", [AttributeError("no attribute"), IndexError("index 9"),
                                 RuntimeError("LAPACK failed"), ZeroDivisionError()])
def test_bugs_keep_their_traceback(monkeypatch, bug):
    def run_fit(args):
        raise bug

    monkeypatch.setattr(cli, "run_fit", run_fit)
    with pytest.raises(type(bug)):
        cli.main(["fit"])


@pytest.mark.parametrize("args, words", [
    (["fit", "--learning-rate", "100"], ["diverged", "learning_rate"]),
    (["fit", "--learning-rate", "x"], ["invalid positive number value: 'x'"]),
    (["fit", "--learning-rate", "-1"], ["--learning-rate"]),
    (["fit", "--factors", "x"], ["invalid positive integer value: 'x'"]),
    (["fit", "--factors", "2147483647"], ["factors", "larger"]),
    (["fit", "--epochs", "1.5"], ["invalid positive integer value: '1.5'"]),
    (["fit", "--regularization", "nan"], ["regularization"]),
    (["fit", "--regularization", "-1"], ["regularization"]),
    (["fit", "--seed", "-1"], ["seed"]),
    (["fit", "--n-threads", "-1"], ["n_threads"]),
    (["fit", "--n-threads", "100000000000"], ["n_threads"]),
    (["fit", "--split-seed", "-5", "--test-size", "0.2"], ["seed"]),
    (["fit", "--test-size", "x"], ["invalid fraction value: 'x'"]),
    (["fit", "--early-stopping", "0", "--fold", "u1"], ["--early-stopping"]),
    (["fit", "--fold", ""], ["--fold", "must not be empty"]),
    (["fit", "--fold", "  "], ["--fold", "must not be empty"]),
    (["fit", "--save", ""], ["--save", "expected a file name"]),
    (["fit", "--save", "sub/"], ["--save", "expected a file name"]),
    (["fit", "--save", ".npz"], ["--save", "expected a file name"]),
    (["fit", "--save", "sub"], ["--save", "sub is a folder"]),
    (["fit", "--save", "box"], ["--save", "box.npz is a folder"]),
    (["fit", "--param", "init=gaussian"], ["init"]),
    (["fit", "--param", "biases=3"], ["biases"]),
    (["fit", "--param", "init_scale=nan"], ["init_scale"]),
    (["fit", "--data-home", ""], ["--data-home", "must not be empty"]),
    (["evaluate", "--folds", ""], ["--folds"]),
    (["evaluate", "--folds", "u1,"], ["--folds"]),
    (["evaluate", "--folds", "u1,,u2"], ["--folds"]),
    (["recommend", "", "1"], ["model", "must not be empty"]),
    (["recommend", "sub", "1"], ["sub"]),
    (["recommend", "model.npz", "1", "-n", "x"], ["invalid positive integer value: 'x'"]),
    (["demo", "--host", ""], ["--host", "must not be empty"]),
    (["demo", "--port", "x"], ["invalid port number value: 'x'"]),
    (["demo", "--model", ""], ["--model", "must not be empty"]),
    (["--factors", "x"], ["invalid positive integer value: 'x'"]),
])
def test_each_bad_value_gives_one_line_and_status_2(capsys, tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("mfrec.demo.launch", lambda *a, **k: pytest.fail("the demo started"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "box.npz").mkdir()
    if args[0] == "fit":  # small and quick; a flag given again below wins
        args = ["fit", "--factors", "2", "--epochs", "2", *args[1:]]
    line = fails(run_main(capsys, *args), *words, output=True)
    assert "_positive" not in line and "_port" not in line  # no helper names
    assert sorted(os.listdir(tmp_path)) == ["box.npz", "sub"]  # nothing written
    assert os.listdir(tmp_path / "sub") == [] and os.listdir(tmp_path / "box.npz") == []


@pytest.mark.parametrize("algorithm, iterations", [("als", "iterations"), ("bayes", "sweeps"),
                                                   ("nmf", "epochs")])
def test_epochs_sets_the_iterations_of_every_algorithm(capsys, algorithm, iterations):
    args = cli.build_parser().parse_args(["fit", "--algorithm", algorithm, "--epochs", "4"])
    assert cli.model_params(args) == {iterations: 4}
    clash = ["fit", "--algorithm", algorithm, "--epochs", "4", "--param", f"{iterations}=3"]
    with pytest.raises(ValueError, match=f"{iterations} given twice"):
        cli.model_params(cli.build_parser().parse_args(clash))
    fails(run_main(capsys, "fit", "--algorithm", "svd", "--epochs", "2"), "--epochs",
          "closed form")


def test_a_diverged_fit_is_one_line_for_the_user(run):
    code, out, err = run("fit", "--factors", "2", "--epochs", "3", "--learning-rate", "100")
    assert "Traceback" not in err
    fails((code, out, err), "diverged", output=True)


# ---- help ------------------------------------------------------------------------

@pytest.mark.parametrize("command", [[], ["fit"], ["evaluate"], ["recommend"], ["demo"]])
def test_help(run, command):
    code, out, err = run(*command, "--help")
    assert code == 0, err
    assert out.startswith(f"usage: {' '.join(['mfrec', *command])}")
    if not command:
        for name in cli.COMMANDS:
            assert name in out


# ---- the bare command: the walk-through ------------------------------------------

def test_walkthrough(run):
    code, out, err = run("--factors", "5", "--epochs", "3", "--n", "3")
    assert code == 0, err
    assert "train loss" in out and "test RMSE" in out
    epochs = [line for line in out.splitlines() if line.split()[:1] in (["1"], ["2"], ["3"])]
    assert len(epochs) == 3
    assert "Top-3 movies for user 1" in out
    top = out.split("Top-3 movies for user 1")[1].strip().splitlines()[1:]
    assert [line.split()[0] for line in top] == ["1.", "2.", "3."]


def test_walkthrough_bad_input(run):
    fails(run("--factors", "5", "--epochs", "2", "--user", "99999"), "99999", output=True)
    fails(run("--factors", "0"), "--factors")
    fails(run("--dataset", "5m"), "--dataset")


def test_options_before_a_subcommand(run):
    fails(run("--factors", "20", "fit"), "fit")


# ---- fit -------------------------------------------------------------------------

def test_fit_saves_the_model_it_reports(run, saved):
    model = mfrec.Model.load(saved)
    assert model.get_params()["factors"] == 5 and model.get_params()["epochs"] == 3
    assert model.seed_ == 1
    assert len(model.history) == 3
    assert model.n_users == 943 and model.n_items == 1682


def test_fit_validation_and_params(run):
    code, out, err = run("fit", *SMALL, "--test-size", "0.2", "--param", "biases=false",
                         "--param", "init=uniform", "--save", "held")
    assert code == 0, err
    model = mfrec.Model.load(run.cwd / "held.npz")
    assert model.biases is False and model.init == "uniform"
    assert model.user_bias is None
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["1"], ["2"], ["3"])]
    assert len(rows) == 3
    for row, hist in zip(rows, model.history):
        assert float(row[1]) == pytest.approx(hist["train_rmse"], abs=6e-5)
        assert float(row[2]) == pytest.approx(hist["valid_rmse"], abs=6e-5)
    # the same split in-process gives the same validation RMSE
    data = mfrec.load_movielens("100k")
    train, test = mfrec.train_test_split(data.ratings, test_size=0.2, seed=42)
    ref = mfrec.Model("sgd", factors=5, epochs=3, seed=1, biases=False, init="uniform")
    ref.fit(train, validation=test)
    assert model.history[-1]["valid_rmse"] == pytest.approx(ref.history[-1]["valid_rmse"])
    assert f"validation RMSE {ref.history[-1]['valid_rmse']:.4f}" in out


def test_fit_fold_with_early_stopping(run, ml100k):
    code, out, err = run("fit", "--factors", "5", "--epochs", "30", "--seed", "1",
                         "--learning-rate", "0.05", "--fold", "u1", "--early-stopping", "2")
    assert code == 0, err
    assert "fitting Model('sgd'" in out and "on 80,000 ratings" in out
    train, test = ml100k.fold("u1")
    ref = mfrec.Model("sgd", factors=5, epochs=30, seed=1, learning_rate=0.05)
    ref.fit(train, validation=test, early_stopping=2)
    epochs = [line for line in out.splitlines() if line.split()[:1] and line.split()[0].isdigit()]
    assert len(epochs) == len(ref.history)
    best = ref.history[ref.best_iteration_ - 1]["valid_rmse"]
    assert f"kept epoch {ref.best_iteration_}, validation RMSE {best:.4f}" in out


def test_fit_closed_form_algorithm(run):
    code, out, err = run("fit", "--algorithm", "popular", "--fold", "u1", "--save", "pop")
    assert code == 0, err
    model = mfrec.Model.load(run.cwd / "pop.npz")
    assert model.algorithm == "popular"
    assert f"validation RMSE {model.history[0]['valid_rmse']:.4f}" in out
    assert len([line for line in out.splitlines() if line.split()[:1] == ["1"]]) == 1


@pytest.mark.parametrize("args, words", [
    (["--factors", "0"], ["--factors"]),
    (["--param", "biases"], ["KEY=VALUE"]),
    (["--param", "colour=blue"], ["colour"]),
    (["--param", "learning_rate=-1"], ["learning_rate"]),
    (["--factors", "5", "--param", "factors=6"], ["factors", "twice"]),
    (["--early-stopping", "2"], ["validation"]),
    (["--fold", "u9"], ["u9"]),
    (["--test-size", "1.5"], ["--test-size"]),
    (["--fold", "u1", "--test-size", "0.2"], ["not allowed"]),
    (["--algorithm", "magic"], ["--algorithm"]),
    (["--dataset", "latest-small", "--fold", "u1"], ["fold"]),
    (["--save", "no/such/folder/m.npz"], ["--save", "does not exist"]),
])
def test_fit_bad_input(run, args, words):
    fails(run("fit", "--epochs", "1", *args), *words)


# ---- evaluate --------------------------------------------------------------------

def test_evaluate_folds_match_a_direct_fit(run, ml100k):
    code, out, err = run("evaluate", *SMALL, "--folds", "u1,u2", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["split"] for r in rows] == ["u1", "u2", "mean"]
    for row in rows[:2]:
        train, test = ml100k.fold(row["split"])
        ref = mfrec.Model("sgd", factors=5, epochs=3, seed=1).fit(train).score(test)
        assert row["rmse"] == pytest.approx(ref["rmse"]) and row["mae"] == pytest.approx(ref["mae"])
        assert 0.85 < row["rmse"] < 1.2
    assert rows[2]["rmse"] == pytest.approx((rows[0]["rmse"] + rows[1]["rmse"]) / 2)


def test_evaluate_random_split_table_and_csv(run, split42):
    code, table, err = run("evaluate", *SMALL)
    assert code == 0, err
    header, row = table.strip().splitlines()
    assert header.split() == ["split", "rmse", "mae", "precision@10", "recall@10", "ndcg@10",
                              "fit_seconds"]
    model = mfrec.Model("sgd", factors=5, epochs=3, seed=1).fit(split42[0])
    ref = {**model.score(split42[1]), **mfrec.metrics.evaluate(model, split42[1], k=10)}
    assert row.split()[:7] == ["random", "0.2"] + [
        f"{ref[m]:.4f}" for m in ("rmse", "mae", "precision", "recall", "ndcg")]
    code, text, err = run("evaluate", *SMALL, "--format", "csv")
    assert code == 0, err
    (parsed,) = list(csv.DictReader(io.StringIO(text)))
    assert float(parsed["rmse"]) == pytest.approx(ref["rmse"])


@pytest.mark.parametrize("args, words", [
    (["--folds", "u9"], ["u9"]),
    (["--dataset", "latest-small", "--folds", "all"], ["no predefined folds"]),
    (["--format", "xml"], ["--format"]),
    (["--test-size", "0"], ["--test-size"]),
    (["--param", "epochs=zero"], ["epochs"]),
])
def test_evaluate_bad_input(run, args, words):
    fails(run("evaluate", "--factors", "2", "--epochs", "1", *args), *words)


# ---- recommend -------------------------------------------------------------------

def test_recommend_json_equals_the_model(run, saved, ml100k):
    code, out, err = run("recommend", saved, 1, "-n", 5, "--format", "json",
                         "--dataset", "100k")
    assert code == 0, err
    rows = json.loads(out)
    items, scores = mfrec.Model.load(saved).recommend(1, n=5)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["item"] for r in rows] == items.tolist()
    assert [r["score"] for r in rows] == [round(float(s), 4) for s in scores]  # rounded
    assert [r["title"] for r in rows] == [ml100k.title(i) for i in items]
    assert '"score": ' + str(rows[0]["score"]) + "\n" in out  # no float32 noise digits


def test_recommend_table_and_csv(run, saved, ml100k):
    model = mfrec.Model.load(saved)
    items, scores = model.recommend(7, n=3)
    code, out, err = run("recommend", saved, 7, "-n", 3, "--dataset", "100k")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split() == ["rank", "item", "title", "score"]
    for line, item, score in zip(lines[1:], items, scores):
        assert ml100k.title(item) in line
        assert line.split()[1] == str(item) and line.split()[-1] == f"{score:.4f}"
    code, out, err = run("recommend", saved, 7, "-n", 3, "--format", "csv", "--include-seen")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    seen_items, _ = model.recommend(7, n=3, exclude_seen=False)
    assert [int(r["item"]) for r in rows] == seen_items.tolist()
    assert rows[0]["title"] == ml100k.title(seen_items[0])  # the model names its dataset


def test_recommend_bad_input(run, saved, tmp_path):
    fails(run("recommend", saved, 99999), "99999")
    fails(run("recommend", "missing.npz", 1), "missing.npz", "no such file")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a model")
    fails(run("recommend", garbage, 1), "not a readable mfrec model")
    fails(run("recommend", saved, "one"), "user")
    fails(run("recommend", saved, 1, "-n", 0), "-n")
    fails(run("recommend", saved, 1, "--format", "yaml"), "--format")
    fails(run("recommend", saved), "user")


def test_recommend_says_when_nothing_is_left(run, tmp_path):
    path = tmp_path / "two.csv"
    path.write_text("user,item,rating\nu1,i1,4\nu1,i2,5\nu2,i1,3\n")
    code, out, err = run("fit", "--ratings", path, "--factors", "2", "--epochs", "1",
                         "--save", tmp_path / "two")
    assert code == 0, err
    code, out, err = run("recommend", tmp_path / "two.npz", "u1", "--format", "json")
    assert code == 0 and json.loads(out) == []
    assert err == ("mfrec: note: user u1 rated every item the model knows: nothing is left "
                   "to recommend\n")


def test_recommend_refuses_a_fifo(run, tmp_path):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    fails(run("recommend", fifo, 1, timeout=30), "model.npz")


# ---- demo ------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_trains_on_start_and_serves(run, run_env):
    port = free_port()
    log_path = run.cwd / "demo.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mfrec", "demo", "--factors", "4", "--epochs", "2",
             "--seed", "1", "--port", str(port)],
            cwd=run.cwd, env={**run_env, "PYTHONUNBUFFERED": "1"}, stdout=log,
            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        page = None
        while page is None:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as r:
                    page = json.load(r)
            except OSError:
                time.sleep(0.3)
        assert page["title"] == "mfrec demo"
        # the page has nothing to upload, and the upload route takes nothing
        body = (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"x\"\r\n"
                b"Content-Type: application/octet-stream\r\n\r\n" + b"x" * 100_000
                + b"\r\n--b--\r\n")
        upload = urllib.request.Request(
            f"http://127.0.0.1:{port}/gradio_api/upload", data=body, method="POST",
            headers={"Content-Type": "multipart/form-data; boundary=b"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(upload, timeout=30)
        refused.value.close()
        assert refused.value.code == 413
        while f"serving http://127.0.0.1:{port}" not in log_path.read_text():
            assert time.monotonic() < deadline, log_path.read_text()  # said once it serves
            time.sleep(0.1)
        out = log_path.read_text()
        assert "on 100,000 ratings" in out  # trained on all of MovieLens 100K,
        assert "kept epoch 2" in out       # with its progress shown
        assert f"http://127.0.0.1:{port}" in out
        assert "share" not in out and "launch()" not in out  # no hint for Python callers
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_demo_refuses_a_model_of_another_dataset(run, saved):
    fails(run("demo", "--model", saved, "--dataset", "latest-small"),
          "not in the MovieLens latest-small catalogue", "another dataset")


def test_demo_bad_input(run, saved):
    fails(run("demo", "--model", "missing.npz"), "missing.npz", "no such file")
    fails(run("demo", "--model", saved, "--factors", "3"), "--model")
    fails(run("demo", "--port", "0"), "--port")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        fails(run("demo", "--model", saved, "--port", busy.getsockname()[1]), "port")


def test_demo_without_gradio(monkeypatch, capsys):
    real = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec",
                        lambda name, *a: None if name == "gradio" else real(name, *a))
    assert cli.main(["demo"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "mfrec: error: the demo needs Gradio: pip install 'mfrec[demo]'"


def test_import_mfrec_does_not_import_gradio(run_env, tmp_path):
    code = ("import sys, mfrec, mfrec.cli, mfrec.demo; "
            "sys.exit('gradio' in sys.modules or 'playwright' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=run_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# ---- a ratings file of one's own ---------------------------------------------------

@pytest.fixture(scope="module")
def own(ml100k, tmp_path_factory):
    """Two files of the first 300 users' ratings of MovieLens 100K: text ids
    ("u1", "m50") under column names of their own, ';'-separated; and
    integer ids, tab-separated without a header (as u.data)."""
    folder = tmp_path_factory.mktemp("own")
    r = ml100k.ratings[ml100k.ratings.user <= 300]
    text = folder / "text.csv"
    with open(text, "w") as f:
        f.write("who;what;stars\n")
        f.writelines(f"u{u};m{i};{x:g}\n" for u, i, x in zip(r.user, r.item, r.rating))
    numbers = folder / "numbers.tsv"
    with open(numbers, "w") as f:
        f.writelines(f"{u}\t{i}\t{x:g}\t0\n" for u, i, x in zip(r.user, r.item, r.rating))
    return folder, r


TEXT_COLUMNS = ["--user-col", "who", "--item-col", "what", "--rating-col", "stars", "--sep", ";"]


def test_fit_and_recommend_on_a_file_of_text_ids(run, own):
    folder, r = own
    code, out, err = run("fit", "--ratings", folder / "text.csv", *TEXT_COLUMNS, *SMALL,
                         "--save", "text")
    assert code == 0, err
    assert f"on {len(r):,} ratings" in out
    model = mfrec.Model.load(run.cwd / "text.npz")
    assert model.user_ids.dtype.kind == "U" and "u1" in model.user_ids
    assert model.metadata["ratings"] == str(folder / "text.csv")
    ref = mfrec.Model("sgd", factors=5, epochs=3, seed=1).fit(
        np.char.add("u", r.user.astype(str)), np.char.add("m", r.item.astype(str)), r.rating)
    assert np.allclose(model.user_factors, ref.user_factors)  # the same ratings were read
    code, out, err = run("recommend", run.cwd / "text.npz", "u7", "-n", 4, "--format", "json")
    assert code == 0, err
    items, scores = model.recommend("u7", n=4)
    assert [row["item"] for row in json.loads(out)] == items.tolist()
    assert "title" not in json.loads(out)[0]
    fails(run("recommend", run.cwd / "text.npz", 7), "User 7 is not in the model", "u1")
    fails(run("recommend", run.cwd / "text.npz", "u7", "--dataset", "100k"), "text ids")


def test_a_file_of_integer_ids_gives_an_integer_model(run, own):
    folder, r = own
    code, out, err = run("fit", "--ratings", folder / "numbers.tsv", *SMALL, "--save", "numbers")
    assert code == 0, err
    model = mfrec.Model.load(run.cwd / "numbers.npz")
    assert model.user_ids.dtype == np.int64 and model.n_users == 300
    code, out, err = run("recommend", run.cwd / "numbers.npz", 7, "-n", 3, "--format", "csv")
    assert code == 0, err
    assert [int(row["item"]) for row in csv.DictReader(io.StringIO(out))] == \
        model.recommend(7, n=3)[0].tolist()
    fails(run("recommend", run.cwd / "numbers.npz", "u7"), "is not a user ID")
    # --string-ids keeps the numbers as text
    code, out, err = run("fit", "--ratings", folder / "numbers.tsv", "--string-ids", *SMALL,
                         "--save", "texts")
    assert code == 0, err
    assert mfrec.Model.load(run.cwd / "texts.npz").user_ids.dtype.kind == "U"


def test_evaluate_a_ratings_file(run, own):
    folder, r = own
    code, out, err = run("evaluate", "--ratings", folder / "numbers.tsv", "--sep", "tab",
                         *SMALL, "--metrics", "rmse,ndcg@5", "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    train, test = mfrec.train_test_split(r, test_size=0.2, seed=42)
    model = mfrec.Model("sgd", factors=5, epochs=3, seed=1).fit(train)
    assert row["rmse"] == pytest.approx(model.score(test)["rmse"])
    assert row["ndcg@5"] == pytest.approx(mfrec.metrics.evaluate(model, test, k=5)["ndcg"])


@pytest.mark.parametrize("args, words", [
    (["--dataset", "100k"], ["--ratings", "--dataset", "not both"]),
    (["--fold", "u1"], ["--fold", "ratings file", "--test-size"]),
    (["--user-col", "nobody"], ["nobody"]),
])
def test_ratings_file_bad_input(run, own, args, words):
    fails(run("fit", "--ratings", own[0] / "numbers.tsv", "--epochs", "1", *args), *words)


def test_ratings_flags_bad_input(capsys, own, tmp_path):
    def run(*args):
        return run_main(capsys, *args)

    fails(run("fit", "--user-col", "who"), "--user-col", "--ratings")
    fails(run("fit", "--ratings", tmp_path / "missing.csv"), "missing.csv")
    fails(run("fit", "--ratings", own[0] / "text.csv", "--sep", "ab"), "--sep")
    fails(run("evaluate", "--ratings", own[0] / "numbers.tsv", "--folds", "all"),
          "no predefined folds")
    fails(run("fit", "--data-home", tmp_path / "nowhere"), "--data-home", "no folder")
    fails(run("recommend", "m.npz", "1", "--data-home", tmp_path / "nowhere"), "no folder")


# ---- evaluate: metrics, folds, seeds --------------------------------------------

def test_evaluate_all_folds_are_the_five_cross_validation_folds(run):
    code, out, err = run("evaluate", "--factors", "2", "--epochs", "1", "--seed", "0",
                         "--folds", "all", "--metrics", "mae", "--format", "csv")
    assert code == 0, err
    assert [r["split"] for r in csv.DictReader(io.StringIO(out))] == \
        ["u1", "u2", "u3", "u4", "u5", "mean"]


@pytest.mark.parametrize("algorithm", ["popular", "wals"])
def test_evaluate_refuses_rating_errors_for_rankers(run, algorithm):
    small = ["--epochs", "1", "--factors", "2"] if algorithm == "wals" else []
    code, out, err = run("evaluate", "--algorithm", algorithm, *small, "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert list(row) == ["split", "precision@10", "recall@10", "ndcg@10", "fit_seconds"]
    fails(run("evaluate", "--algorithm", algorithm, "--metrics", "ndcg@10,rmse"),
          "rmse", "does not predict ratings")


def test_evaluate_bad_metrics(capsys):
    fails(run_main(capsys, "evaluate", "--metrics", "ndcg"), "--metrics",
          "unknown metric 'ndcg'")
    fails(run_main(capsys, "evaluate", "--metrics", "rmse,rmse"), "--metrics", "twice")


def test_a_drawn_seed_is_printed_and_repeats_the_run(run):
    code, out, err = run("fit", "--factors", "3", "--epochs", "2", "--save", "drawn")
    assert code == 0, err
    seed = mfrec.Model.load(run.cwd / "drawn.npz").seed_
    assert f"seed {seed} (drawn at random; --seed {seed} repeats this fit)" in out
    code, out, err = run("evaluate", "--factors", "3", "--epochs", "2", "--metrics", "rmse",
                         "--format", "json")
    assert code == 0, err
    seed = int(re.fullmatch(r"seed (\d+) \(drawn at random; --seed \1 repeats this "
                            r"evaluation\)\n", err).group(1))
    code, again, err = run("evaluate", "--factors", "3", "--epochs", "2", "--metrics", "rmse",
                           "--format", "json", "--seed", seed)
    assert code == 0 and err == ""
    assert json.loads(again)[0]["rmse"] == json.loads(out)[0]["rmse"]


# ---- a model file remembers its data ---------------------------------------------

def test_recommend_titles_from_the_dataset_the_model_names(run, saved, ml100k, run_env,
                                                            tmp_path):
    assert mfrec.Model.load(saved).metadata == {"dataset": "100k"}
    code, out, err = run("recommend", saved, 3, "-n", 2, "--format", "csv")
    assert code == 0, err
    items = mfrec.Model.load(saved).recommend(3, n=2)[0]
    assert [r["title"] for r in csv.DictReader(io.StringIO(out))] == \
        [ml100k.title(i) for i in items]
    # where the dataset is not at hand: the list without titles, and a note
    env = {k: v for k, v in run_env.items() if k != "MFREC_DATA"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "mfrec", "recommend", str(saved), "3", "-n",
                           "2", "--format", "csv"], cwd=run.cwd, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [int(r["item"]) for r in csv.DictReader(io.StringIO(proc.stdout))] == items.tolist()
    assert "title" not in proc.stdout and "MFREC_DATA" in proc.stderr


def test_offline_error_says_where_it_looked(monkeypatch, capsys, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.delenv("MFREC_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr("mfrec.datasets.urllib.request.urlopen", offline)
    line = fails(run_main(capsys, "fit", "--epochs", "1"), "MovieLens 100k",
                 str(tmp_path / "mfrec"), "name resolution", "set MFREC_DATA")
    assert "MFREC_DATA is not set" in line


# ---- the walk-through's figures against the document's -----------------------------

def test_walkthrough_explains_its_figures(run, split42):
    code, out, err = run("--factors", "5", "--epochs", "2", "--n", "1")
    assert code == 0, err
    header = next(line for line in out.splitlines() if line.startswith("epoch"))
    assert header.split() == ["epoch", "train", "loss", "train", "RMSE", "test", "RMSE"]
    model = mfrec.Model("sgd", factors=5, learning_rate=0.02, regularization=0.0,
                        biases=False, init="uniform", init_scale=0.01, epochs=2, seed=42)
    model.fit(split42[0], validation=split42[1], early_stopping=3)
    first = next(line for line in out.splitlines() if line.split()[:1] == ["1"])
    assert first.split()[2] == f"{model.history[0]['train_rmse']:.4f}"
    train, test = split42
    unseen = int((~np.isin(test.item, train.item) | ~np.isin(test.user, train.user)).sum())
    assert unseen > 0
    assert "0.9388 at epoch 13" in out and "update order" in out
    assert f"{unseen} test ratings are of a movie or user with no training" in out


# ---- the demo over one's own data, and its port ------------------------------------

def test_demo_checks_the_port_before_training(run):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = fails(run("demo", "--factors", "2", "--epochs", "1", "--port", port), "port")
    assert f"cannot serve on 127.0.0.1:{port}" in line and "--port" in line
    assert "launch()" not in line and "GRADIO" not in line


def test_demo_over_a_ratings_file(monkeypatch, capsys, own, run):
    served = []
    monkeypatch.setattr(cli, "launch", lambda rec, **kw: served.append(rec))
    folder, r = own
    code, out, err = run_main(capsys, "demo", "--ratings", folder / "text.csv", *TEXT_COLUMNS,
                              "--factors", "2", "--epochs", "1", "--port", free_port())
    assert code == 0, err
    (rec,) = served
    assert rec.data.name == "text.csv" and rec.model.n_users == 300
    assert rec.for_user("u3")[0] == "u3"
    # a saved model of that file finds it again
    code, out, err = run("fit", "--ratings", folder / "text.csv", *TEXT_COLUMNS, *SMALL,
                         "--save", "again")
    assert code == 0, err
    code, out, err = run_main(capsys, "demo", "--model", run.cwd / "again.npz",
                              "--port", free_port())
    assert code == 0, err
    assert served[1].data.name == "text.csv" and len(served[1].data.ratings) == len(r)
