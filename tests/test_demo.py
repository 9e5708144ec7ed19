"""The web demo's logic, without a browser (tests/test_demo_browser.py drives the page)."""
import numpy as np
import pytest

import mfrec
from mfrec.demo import DemoError, Recommender, catalogue, message_html, parse_id, table_html


@pytest.fixture(scope="module")
def model(ml100k):
    return mfrec.Model("sgd", factors=10, epochs=5, seed=3).fit(ml100k.ratings)


@pytest.fixture(scope="module")
def rec(model, ml100k):
    return Recommender(model, ml100k, n=7)


def test_user_rows_are_the_models_top_n(rec, model, ml100k):
    user, rows, rated = rec.for_user(" 42 ")
    assert user == 42
    items, scores = model.recommend(42, n=7)
    assert [r["rank"] for r in rows] == list(range(1, 8))
    assert [r["item"] for r in rows] == items.tolist()
    assert [r["score"] for r in rows] == [float(s) for s in scores]
    assert [r["title"] for r in rows] == [ml100k.title(i) for i in items]
    assert [r["genres"] for r in rows] == [", ".join(ml100k.genres_of(i)) for i in items]
    assert rec.score_label == "Predicted rating"


def test_rated_rows_are_the_users_highest_ratings(rec, ml100k):
    _, _, rated = rec.for_user("42")
    r = ml100k.ratings
    mine = r.user == 42
    assert len(rated) == 7
    scores = [row["score"] for row in rated]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == r.rating[mine].max()
    # each row is one of the user's ratings, and no better-rated movie was left out
    given = dict(zip(r.item[mine].tolist(), r.rating[mine].tolist()))
    assert all(given[row["item"]] == row["score"] for row in rated)
    assert np.sum(r.rating[mine] > scores[-1]) <= 7


@pytest.mark.parametrize("text, words", [
    ("", "Enter a user ID"),
    ("   ", "Enter a user ID"),
    (None, "Enter a user ID"),
    ("abc", "is not a user ID"),
    ("1.5", "is not a user ID"),
    ("1; drop", "is not a user ID"),
    ("99999", "User 99999 is not in the model"),
    ("0", "User 0 is not in the model"),
    ("-3", "User -3 is not in the model"),
])
def test_bad_user_ids(rec, text, words):
    with pytest.raises(DemoError, match=words):
        rec.for_user(text)


def test_new_user_fold_in(rec, model):
    picks = []
    for item, rating in [(50, 5), (172, 5), (1, 4), (181, 4), (294, 1)]:
        picks = rec.add_pick(picks, str(item), rating)
    picks = rec.add_pick(picks, 294, 2)  # a movie picked again gets its new rating
    assert picks == [[50, 5.0], [172, 5.0], [1, 4.0], [181, 4.0], [294, 2.0]]
    assert [r["title"] for r in rec.pick_rows(picks)][:1] == ["Star Wars (1977)"]
    rows = rec.for_new_user(picks)
    items, scores = model.recommend_new_user([50, 172, 1, 181, 294], [5, 5, 4, 4, 2], n=7)
    assert [r["item"] for r in rows] == items.tolist()
    assert [r["score"] for r in rows] == [float(s) for s in scores]


@pytest.mark.parametrize("item, rating, words", [
    (None, 4, "Choose a movie"),
    ("", 4, "Choose a movie"),
    (50, None, "Choose a rating"),
    ("fifty", 4, "“fifty” is not a movie of the list"),
    (99999, 4, "Movie #99999 is not in the model"),
    (50, 4.5, "A rating is one of 1, 2, 3, 4, 5"),
    (50, 7, "A rating is one of"),
    (50, "five", "A rating is one of"),
])
def test_bad_picks(rec, item, rating, words):
    with pytest.raises(DemoError, match=words):
        rec.add_pick([], item, rating)


def test_new_user_needs_a_rating(rec):
    with pytest.raises(DemoError, match="Rate at least one movie"):
        rec.for_new_user([])


def test_similar_movies(rec, model, ml100k):
    rows = rec.similar("50")
    items, scores = model.similar_items(50, n=7)
    assert [r["item"] for r in rows] == items.tolist()
    assert [r["score"] for r in rows] == [float(s) for s in scores]
    for bad, words in [(None, "Choose a movie"), ("Star Wars", "not a movie of the list"),
                       (0, "not in the model")]:
        with pytest.raises(DemoError, match=words):
            rec.similar(bad)


def test_choices_name_every_known_movie_once(rec, model, ml100k):
    labels = [label for label, _ in rec.choices]
    values = [value for _, value in rec.choices]
    assert sorted(values) == model.item_ids.tolist()
    assert len(set(labels)) == len(labels)
    # most rated first
    counts = np.bincount(ml100k.ratings.item)[values]
    assert np.all(np.diff(counts) <= 0)
    # MovieLens 100K has two movies titled "Chasing Amy (1997)": ids tell them apart
    amy = [(label, v) for label, v in rec.choices if label.startswith("Chasing Amy (1997)")]
    assert len(amy) == 2 and all(label.endswith(f"[#{v}]") for label, v in amy)
    assert dict(rec.choices)["Star Wars (1977)"] == 50
    assert rec.rating_choices == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_search(rec, ml100k):
    assert rec.search("") == rec.choices[:50]
    assert rec.search("", limit=3)[0] == ("Star Wars (1977)", 50)  # the most rated
    assert rec.search("xqzzy") == []
    hits = rec.search("  STAR wars ")
    assert hits[0] == ("Star Wars (1977)", 50)
    assert all("star wars" in label.lower() for label, _ in hits)
    # titles that start with the text come first, then the most rated
    hits = rec.search("star")
    starts = [label.lower().startswith("star") for label, _ in hits]
    assert starts == sorted(starts, reverse=True) and not all(starts)
    every = [label for label, _ in rec.choices if "star" in label.lower()]
    assert len(hits) == min(50, len(every))
    assert len(rec.search("the", limit=7)) == 7


def test_html_is_escaped():
    rows = [{"rank": 1, "item": 1, "title": "<script>x</script> & Co", "genres": "Drama",
             "score": 4.256}]
    out = table_html(rows, "Predicted rating", "user", "Top <1>", "1")
    assert "<script>" not in out and "&lt;script&gt;" in out and "&amp; Co" in out
    assert "<td>4.26</td>" in out and "Top &lt;1&gt;" in out
    assert table_html([], "x", "user") == ""
    assert "&lt;b&gt;" in message_html("<b>") and message_html("") == ""


def test_recommender_bad_input(model, ml100k):
    with pytest.raises(ValueError, match="fitted"):
        Recommender(mfrec.Model("sgd"), ml100k)
    for n in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n must be"):
            Recommender(model, ml100k, n=n)



@pytest.mark.parametrize("value", [3.7, "3.7", 50.5, True, np.float32(2.5), "4_2", "١٢",
                                   float("nan"), float("inf"), [50], "9" * 30])
def test_picked_movies_must_be_whole_numbers(rec, value):
    # a value typed into a list, or sent to the server, is never rounded to a movie
    with pytest.raises(DemoError, match="is not a movie of the list"):
        rec.parse_item(value)


@pytest.mark.parametrize("value", [50, "50", " 50 ", 50.0, np.int64(50), np.float64(50)])
def test_picked_movies_in_any_whole_form(rec, value):
    assert rec.parse_item(value) == 50
    assert type(rec.parse_item(value)) is int


@pytest.mark.parametrize("text", ["4.2", "4_2", "٤٢", "1e3", "9" * 30, "-" + "1" * 19])
def test_user_ids_must_be_plain_whole_numbers(rec, text):
    with pytest.raises(DemoError, match="is not a user ID|is not in the model"):
        rec.for_user(text)


def test_messages_echo_a_short_prefix_of_the_input(rec):
    huge = "x" * 1_000_000
    for call, args in [(rec.for_user, (huge,)), (rec.parse_item, (huge,)),
                       (rec.add_pick, ([], huge, 4))]:
        with pytest.raises(DemoError) as info:
            call(*args)
        message = str(info.value)
        assert len(message) < 200 and "x" * 20 + "…" in message, message[:300]


@pytest.fixture(scope="module")
def few_movies(ml100k):
    """A model over the ratings of five movies: user 1 rated them all."""
    r = ml100k.ratings
    keep = np.isin(r.item, [1, 2, 3, 4, 5])
    model = mfrec.Model("sgd", factors=3, epochs=2, seed=0).fit(
        r.user[keep], r.item[keep], r.rating[keep])
    assert model.item_ids.tolist() == [1, 2, 3, 4, 5]
    return Recommender(model, ml100k, n=3)


def test_nothing_left_to_recommend_is_said(few_movies):
    rated = set(few_movies.data.ratings.item[few_movies.data.ratings.user == 1].tolist())
    assert {1, 2, 3, 4, 5} <= rated
    with pytest.raises(DemoError, match="User 1 has rated every movie the model knows: "
                                        "there is nothing left to recommend"):
        few_movies.for_user("1")
    picks = []
    for item in [1, 2, 3, 4]:
        picks = few_movies.add_pick(picks, item, 4)
    assert len(few_movies.for_new_user(picks)) == 1  # one movie left: it is shown
    picks = few_movies.add_pick(picks, 5, 3)
    with pytest.raises(DemoError, match="You have rated every movie the model knows"):
        few_movies.for_new_user(picks)


def test_a_model_of_another_catalogue_is_refused(ml100k, ml_latest):
    # movie ids of 100K that latest-small lacks: requests for them would fail
    model = mfrec.Model("sgd", factors=3, epochs=1, seed=0).fit(ml100k.ratings)
    with pytest.raises(ValueError, match=r"movie ids are not in the MovieLens latest-small "
                                         r"catalogue \(.*\): was the model trained on "
                                         r"another dataset\?"):
        Recommender(model, ml_latest)
    # a model over part of the catalogue is fine
    r = ml_latest.ratings
    part = Recommender(mfrec.Model("popular").fit(r.user[:500], r.item[:500], r.rating[:500]),
                       ml_latest)
    assert sorted(v for _, v in part.choices) == np.unique(r.item[:500]).tolist()


def test_summary_and_score_label(rec, ml100k):
    assert rec.summary() == ("SGD model, k=10, over 943 users and 1,682 movies of "
                             "MovieLens 100k.")
    popular = Recommender(mfrec.Model("popular").fit(ml100k.ratings), ml100k)
    assert popular.summary().startswith("POPULAR model, over 943 users")
    assert popular.score_label == "Score"  # a popularity score is no rating
    _, rows, _ = popular.for_user("1")
    assert [r["item"] for r in rows] == popular.model.recommend(1, n=10)[0].tolist()


def test_serves_a_bayesian_model(ml100k):
    """The demo serves Bayesian MF as any model: its lists are the model's
    own (the posterior mean), a new user folds in, similar items rank."""
    model = mfrec.Model("bayes", factors=4, sweeps=6, burn_in=2, seed=0).fit(ml100k.ratings)
    rec = Recommender(model, ml100k, n=5)
    _, rows, _ = rec.for_user("42")
    items, scores = model.recommend(42, n=5)
    assert [r["item"] for r in rows] == items.tolist()
    assert [r["score"] for r in rows] == [float(s) for s in scores]
    picks = rec.add_pick(rec.add_pick(None, 50, 5), 172, 5)
    new = rec.for_new_user(picks)
    expected, _ = model.recommend_new_user([50, 172], [5, 5], n=5)
    assert [r["item"] for r in new] == expected.tolist()
    similar = rec.similar(50)
    assert [r["item"] for r in similar] == model.similar_items(50, n=5)[0].tolist()


@pytest.fixture(scope="module")
def named(ml100k):
    """The demo over a model of string ids ("u1", "m50"), with the catalogue a
    ratings file of one's own gets: items titled by their ids, no genres."""
    r = ml100k.ratings
    ratings = mfrec.Ratings(np.char.add("u", r.user.astype(str)),
                            np.char.add("m", r.item.astype(str)), r.rating, r.timestamp)
    model = mfrec.Model("sgd", factors=5, epochs=3, seed=2).fit(ratings)
    return Recommender(model, catalogue(ratings, "my.csv"), n=5)


def test_string_ids_in_the_demo(named):
    model = named.model
    user, rows, rated = named.for_user(" u42 ")
    assert user == "u42"
    items, scores = model.recommend("u42", n=5)
    assert [r["item"] for r in rows] == items.tolist() == [r["title"] for r in rows]
    assert all(type(r["item"]) is str and "genres" not in r for r in rows + rated)
    assert "<th>Genres</th>" not in table_html(rows, "Score", "user")
    assert named.summary().endswith("over 943 users and 1,682 movies of my.csv.")
    with pytest.raises(DemoError, match="User 42 is not in the model: its users are u1 to "):
        named.for_user("42")  # an integer is no id of this model
    assert named.parse_item("m50") == "m50" and named.search("m50")[0] == ("m50", "m50")
    for bad in (50, "50", None, ""):
        with pytest.raises(DemoError):
            named.parse_item(bad)
    picks = named.add_pick(named.add_pick(None, "m50", 5), "m172", 5)
    expected, _ = model.recommend_new_user(["m50", "m172"], [5, 5], n=5)
    assert [r["item"] for r in named.for_new_user(picks)] == expected.tolist()
    assert [r["item"] for r in named.similar("m50")] == model.similar_items("m50", n=5)[0].tolist()


def test_parse_id_follows_the_models_kind(model, named):
    assert parse_id("42", model.user_ids) == 42 and parse_id("+42 ", model.user_ids) == 42
    assert parse_id("u42", named.model.user_ids) == "u42"
    for text, words in [("u42", "is not a user ID"), ("9" * 25, "is not a user ID"),
                        ("", "Enter a user ID, for example 1")]:
        with pytest.raises(DemoError, match=words):
            parse_id(text, model.user_ids)
    with pytest.raises(DemoError, match="Enter a user ID, for example u1"):
        parse_id("  ", named.model.user_ids)
    with pytest.raises(DemoError, match="Item m9999 is not in the model"):
        parse_id("m9999", named.model.item_ids, "item")
