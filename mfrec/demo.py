"""The web demo: ``mfrec demo`` / ``python -m mfrec demo``.

A page with three tabs over a fitted model and its MovieLens catalogue
(or, for a ratings file of one's own, a catalogue that names each item by
its id): top-N for a user (with the movies that user rated highest),
fold-in recommendations for a new user who rates a few movies, and similar
movies. User and item ids are those of the model, integers or strings.

The logic lives in :class:`Recommender` and plain functions that return rows
and messages, so it is tested without a browser; :func:`build_app` only lays
them out with Gradio, which is imported here and only when the demo starts
(``pip install "mfrec[demo]"``), never by ``import mfrec``.
"""
import html
import re
import time
from collections import Counter
from types import SimpleNamespace
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from ._ids import first_ids, index_of
from ._predictions import check_n
from ._vocab import id_from_text
from .algorithms import get_algorithm
from .datasets import NAMES, MovieLens
from .model import Model
from .ratings import Ratings

__all__ = ["Recommender", "DemoError", "build_app", "launch", "catalogue", "parse_id"]


class DemoError(ValueError):
    """A problem with what was entered, shown as a message in the page."""


#: A message repeats at most this many characters of what was entered.
ECHO_LIMIT = 40
#: What the page says when a user has rated every movie.
NOTHING_LEFT = "{} rated every movie the model knows: there is nothing left to recommend."
#: Uploads the server accepts, in bytes: the page has no file to upload.
MAX_UPLOAD = 0


def echo(value) -> str:
    """What was entered, cut short to be repeated in a message."""
    text = str(value)
    return text if len(text) <= ECHO_LIMIT else text[:ECHO_LIMIT - 1] + "…"


def whole_number(value) -> Optional[int]:
    """`value` as an int when it is a whole number (an int, an integral
    float, or decimal digits in text), else None: 3.7 is no movie 3."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return int(value) if float(value).is_integer() else None
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]{1,19}", value.strip()):
        return int(value)
    return None


def contains(ids: np.ndarray, value) -> bool:
    """Whether the sorted array `ids` holds `value`, an id of its kind."""
    if isinstance(value, int) and not -2**63 <= value < 2**63:
        return False
    return index_of(np.array([value]), ids)[0] >= 0


def plain(value):
    """An id as Python shows and JSON writes it: int or str."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    return int(value) if isinstance(value, (int, np.integer)) else str(value)


def parse_id(text, ids: np.ndarray, what: str = "user"):
    """The id of a model's `ids` typed as `text`, in their kind (an integer
    model takes "42", a string model "u42"); DemoError (a ValueError) if
    it is not one of them."""
    text = "" if text is None else str(text).strip()
    if not text:
        raise DemoError(f"Enter a {what} ID, for example {plain(ids[0])}.")
    value = id_from_text(text, ids)
    if value is None:
        raise DemoError(f"“{echo(text)}” is not a {what} ID: enter a whole number such "
                        f"as {plain(ids[0])}.")
    if not contains(ids, value):
        raise DemoError(f"{what.capitalize()} {echo(plain(value))} is not in the model: its "
                        f"{what}s are {plain(ids[0])} to {plain(ids[-1])} "
                        f"({len(ids):,} {what}s).")
    return value


def catalogue(ratings: Ratings, name: str) -> MovieLens:
    """The catalogue of ratings that come without one (a file of one's own):
    each item titled by its id, no genres."""
    ids = np.unique(ratings.item)
    titles = np.array([str(plain(i)) for i in ids], dtype=object)
    return MovieLens(name, ratings, ids, titles, np.zeros((len(ids), 0), bool), [], name)


def source(data: MovieLens) -> str:
    """The data's name in a sentence: "MovieLens 100k", or a file's name."""
    return f"MovieLens {data.name}" if data.name in NAMES else data.name


class Recommender:
    """What the page shows, as plain rows.

    A row is a dict: rank, item (raw id), title, genres (comma-separated)
    and score (the model's predicted rating, or a similarity).
    """

    def __init__(self, model: Model, data: MovieLens, n: int = 10):
        if not model.is_fitted:
            raise ValueError("the demo needs a fitted model")
        self.model, self.data, self.n = model, data, check_n(n)
        # explicit-rating models predict ratings; others (popularity, implicit) rank by a score
        self.score_label = ("Predicted rating" if get_algorithm(model.algorithm).clip_predictions
                            else "Score")
        # Every movie the model knows needs a title: a model trained on
        # another dataset is refused here rather than failing each request.
        unknown = np.setdiff1d(model.item_ids, data.item_ids)
        if len(unknown):
            raise ValueError(f"{len(unknown):,} of the model's {len(model.item_ids):,} movie ids "
                             f"are not in the {source(data)} catalogue "
                             f"({first_ids(unknown)}): was "
                             f"the model trained on another dataset?")
        # The model's movies, most rated first; titles that occur twice
        # (MovieLens 100K has 18) get their id.
        known = model.item_ids
        titles = data.titles_of(known)
        repeated = {t for t, c in Counter(titles.tolist()).items() if c > 1}
        labels = [f"{t} [#{i}]" if t in repeated else t for t, i in zip(titles, known)]
        counts = np.bincount(np.searchsorted(known, data.ratings.item[
            np.isin(data.ratings.item, known)]), minlength=len(known))
        order = sorted(range(len(known)), key=lambda j: (-counts[j], labels[j].lower()))
        self.choices: List[Tuple[str, Any]] = [(labels[j], plain(known[j])) for j in order]
        self._lower = [label.lower() for label, _ in self.choices]
        self.rating_choices = sorted({float(r) for r in np.unique(data.ratings.rating)})

    def search(self, text, limit: int = 50) -> List[Tuple[str, int]]:
        """Up to `limit` (label, item) pairs whose title contains `text`
        (any case): titles that start with it first, then the most rated.
        Empty text: the most rated movies."""
        text = (text or "").strip().lower()
        hits = [j for j, label in enumerate(self._lower) if text in label]
        hits.sort(key=lambda j: not self._lower[j].startswith(text))  # stable: keeps popularity
        return [self.choices[j] for j in hits[:limit]]

    def summary(self) -> str:
        m = self.model
        k = m.get_params().get("factors")
        return (f"{m.algorithm.upper()} model{f', k={k}' if k else ''}, over "
                f"{m.n_users:,} users and {m.n_items:,} movies of {source(self.data)}.")

    # ---- rows ----------------------------------------------------------------

    def rows(self, items: Iterable[Any], scores: Iterable[Any]) -> List[dict]:
        genres = bool(self.data.genre_names)  # a catalogue of one's own has none
        return [{"rank": rank, "item": plain(item), "title": self.data.title(item),
                 **({"genres": ", ".join(self.data.genres_of(item))} if genres else {}),
                 "score": float(score)}
                for rank, (item, score) in enumerate(zip(items, scores), 1)]

    def parse_user(self, text):
        """The user id typed in the box; DemoError if it is not one the model knows."""
        return parse_id(text, self.model.user_ids)

    def for_user(self, text) -> Tuple[int, List[dict], List[dict]]:
        """(user, top-N rows, the user's highest-rated movies as rows)."""
        user = self.parse_user(text)
        items, scores = self.model.recommend(user, n=self.n)
        if not len(items):
            raise DemoError(NOTHING_LEFT.format(f"User {user} has"))
        r = self.data.ratings
        mine = np.flatnonzero(r.user == user)
        # highest rating first; among equal ratings, the most recent first
        stamp = r.timestamp[mine] if r.timestamp is not None else np.zeros(len(mine))
        best = mine[np.lexsort((-stamp, -r.rating[mine]))][:self.n]
        return user, self.rows(items, scores), self.rows(r.item[best], r.rating[best])

    def parse_item(self, item):
        """The movie chosen in a list (its id, in the model's kind);
        DemoError if it is none the model knows."""
        if item is None or item == "":
            raise DemoError("Choose a movie: type part of its title in the search box.")
        ids = self.model.item_ids
        if ids.dtype.kind in "iu":
            value = whole_number(item)
        else:  # the list's values are the ids as text
            value = id_from_text(item, ids) if isinstance(item, str) else None
        if value is None:
            raise DemoError(f"“{echo(item)}” is not a movie of the list: search its title.")
        if not contains(ids, value):
            raise DemoError(f"Movie #{echo(plain(value))} is not in the model.")
        return value

    def add_pick(self, picks: Optional[list], item, rating) -> list:
        """`picks` ([item, rating] pairs) with one more; a movie picked again
        gets its new rating."""
        item = self.parse_item(item)
        if rating is None or rating == "":
            raise DemoError("Choose a rating for the movie.")
        try:
            rating = float(rating)
        except (TypeError, ValueError):
            rating = None
        if rating not in self.rating_choices:
            allowed = ", ".join(f"{c:g}" for c in self.rating_choices)
            raise DemoError(f"A rating is one of {allowed}.")
        return [p for p in (picks or []) if p[0] != item] + [[item, rating]]

    def pick_rows(self, picks: Optional[list]) -> List[dict]:
        return self.rows([p[0] for p in picks or []], [p[1] for p in picks or []])

    def for_new_user(self, picks: Optional[list]) -> List[dict]:
        """Fold-in recommendations for someone who rated `picks`."""
        if not picks:
            raise DemoError("Rate at least one movie first.")
        items = np.array([p[0] for p in picks])  # ids of the model's kind
        ratings = np.array([p[1] for p in picks], np.float32)
        found = self.model.recommend_new_user(items, ratings, n=self.n)
        if not len(found[0]):
            raise DemoError(NOTHING_LEFT.format("You have"))
        return self.rows(*found)

    def similar(self, item) -> List[dict]:
        return self.rows(*self.model.similar_items(self.parse_item(item), n=self.n))


# ---- HTML ----------------------------------------------------------------------

def table_html(rows: List[dict], score_label: str, kind: str, caption: str = "",
               key: str = "", score_format: str = "{:.2f}") -> str:
    """An HTML table of rows; `kind` and `key` tag it (data-kind, data-key)
    so that a reader, or a test, can tell which answer it shows."""
    if not rows:
        return ""
    genres = "genres" in rows[0]  # rows of a catalogue without genres have none
    head = "".join(f"<th>{h}</th>" for h in ("#", "Title", *(["Genres"] if genres else []),
                                            html.escape(score_label)))
    body = "".join(
        f"<tr><td>{r['rank']}</td><td>{html.escape(r['title'])}</td>"
        + (f"<td>{html.escape(r['genres'])}</td>" if genres else "")
        + f"<td>{score_format.format(r['score'])}</td></tr>"
        for r in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<table class="mfrec-table" data-kind="{kind}" data-key="{html.escape(key)}">'
            f"{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def message_html(text: str, kind: str = "error") -> str:
    return f'<p class="mfrec-{kind}" role="alert">{html.escape(text)}</p>' if text else ""


# ---- the page ------------------------------------------------------------------

CSS = """
.mfrec-table { border-collapse: collapse; width: 100%; }
.mfrec-table caption { text-align: left; font-weight: 600; padding: 0.4em 0; }
.mfrec-table th, .mfrec-table td { padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; }
.mfrec-table td:first-child, .mfrec-table td:last-child { text-align: right; }
.mfrec-error { color: #b00020; font-weight: 600; }
/* a phone: the three tabs' names fit in one line, none hidden behind a menu */
@media (max-width: 480px) { .tab-container button { padding: 0 8px; } }
"""
#: Tables side by side need this many pixels each; below, they stack (a phone).
TABLE_WIDTH = 340


# Every answer takes about a millisecond: a plain request (no queue, no
# progress animation) keeps the page's round trip short.
QUICK: Dict[str, Any] = {"queue": False, "show_progress": "hidden"}


def build_app(rec: Recommender):
    """The Gradio page over `rec`, and the theme to launch it with."""
    import gradio as gr

    on = _handlers(rec, gr)
    # System fonts only: the page makes no request outside this server.
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["monospace"])
    with gr.Blocks(title="mfrec demo", analytics_enabled=False) as app:
        gr.Markdown(f"## mfrec: movie recommendations\n{rec.summary()}")
        _user_tab(gr, on)
        new_search, movie, new_msg = _new_user_tab(gr, rec, on)
        like_search, like, similar_msg = _similar_tab(gr, rec, on)
        # The movie lists hold the few dozen titles that match the search box,
        # not the catalogue: the page copies every component's state after
        # each answer, and 9,724 titles (latest-small) made that 0.5 s.
        # Searches go through the queue, which runs the last keystroke's
        # search last; the lists change under the browser, so the server
        # does not hold a picked movie to the list it last sent (Recommender
        # checks it).
        for box, menu, msg in ((new_search, movie, new_msg), (like_search, like, similar_msg)):
            box.input(on.find, box, [menu, msg], trigger_mode="always_last", show_progress="hidden")
    return app, theme


def _handlers(rec: Recommender, gr):
    """The page's event handlers, as attributes of one namespace."""

    def user_tab(text):
        try:
            user, recs, rated = rec.for_user(text)
        except DemoError as e:
            return message_html(str(e)), "", ""
        return ("", table_html(recs, rec.score_label, "user", f"Top {rec.n} for user {user}",
                               str(user)),
                table_html(rated, "Their rating", "rated",
                           f"Movies user {user} rated highest", str(user), "{:g}"))

    def picks_view(picks):
        return table_html(rec.pick_rows(picks), "Your rating", "picks", "Your ratings",
                          str(len(picks)), "{:g}")

    def add(picks, item, rating):
        try:
            picks = rec.add_pick(picks, item, rating)
        except DemoError as e:
            return picks, picks_view(picks or []), message_html(str(e))
        return picks, picks_view(picks), ""

    def new_user(picks):
        try:
            rows = rec.for_new_user(picks)
        except DemoError as e:
            return message_html(str(e)), ""
        return "", table_html(rows, rec.score_label, "new-user",
                              f"Top {rec.n} for you", str(len(picks)))

    def find(text):
        hits = rec.search(text)
        missing = message_html(f"No title contains “{echo(text.strip())}”.") if not hits else ""
        return gr.update(choices=hits, value=hits[0][1] if hits else None), missing

    def similar(item):
        if item is None:  # the search found nothing, and says so
            return gr.skip(), ""
        try:
            item = rec.parse_item(item)
            rows = rec.similar(item)
        except DemoError as e:
            return message_html(str(e)), ""
        return "", table_html(rows, "Similarity", "similar",
                              f"Movies like {rec.data.title(item)}", str(item))

    return SimpleNamespace(user_tab=user_tab, picks_view=picks_view, add=add,
                           new_user=new_user, find=find, similar=similar)


def _side_by_side(gr, *elem_ids) -> list:
    """HTML blocks (tables) in a row, each in a column that keeps
    TABLE_WIDTH: on a narrow page (a phone) they stack instead of overlapping."""
    blocks = []
    with gr.Row():
        for elem_id in elem_ids:
            with gr.Column(min_width=TABLE_WIDTH):
                blocks.append(gr.HTML(elem_id=elem_id))
    return blocks


def _user_tab(gr, on) -> None:
    """The tab of a known user's recommendations."""
    with gr.Tab("For a user"):
        with gr.Row():
            user = gr.Textbox(label="User ID", placeholder="e.g. 1", elem_id="user-id",
                              scale=3)
            go = gr.Button("Recommend", variant="primary", elem_id="user-go", scale=1)
        user_msg = gr.HTML(elem_id="user-message")
        user_recs, user_rated = _side_by_side(gr, "user-recs", "user-rated")
        for event in (go.click, user.submit):
            event(on.user_tab, user, [user_msg, user_recs, user_rated], **QUICK)


def _new_user_tab(gr, rec: Recommender, on):
    """The new user's tab; returns its search box, movie list and message."""
    with gr.Tab("New user"):
        picks = gr.State([])
        with gr.Row():
            new_search = gr.Textbox(label="Search a title", placeholder="e.g. star wars",
                                    elem_id="new-search", scale=2)
            movie = gr.Dropdown(rec.search(""), value=None, label="Movie",
                                allow_custom_value=True, elem_id="new-movie", scale=3)
            rating = gr.Radio([(f"{c:g}", c) for c in rec.rating_choices],
                              label="Your rating", elem_id="new-rating", scale=3)
        with gr.Row():
            add_btn = gr.Button("Add rating", elem_id="new-add")
            clear_btn = gr.Button("Clear", elem_id="new-clear")
            go_new = gr.Button("Recommend", variant="primary", elem_id="new-go")
        new_msg = gr.HTML(elem_id="new-message")
        picks_out, new_recs = _side_by_side(gr, "new-picks", "new-recs")
        add_btn.click(on.add, [picks, movie, rating], [picks, picks_out, new_msg], **QUICK)
        clear_btn.click(lambda: ([], "", "", ""), None, [picks, picks_out, new_msg, new_recs],
                        **QUICK)
        go_new.click(on.new_user, picks, [new_msg, new_recs], **QUICK)
    return new_search, movie, new_msg


def _similar_tab(gr, rec: Recommender, on):
    """The similar movies' tab; returns its search box, movie list and message."""
    with gr.Tab("Similar movies"):
        with gr.Row():
            like_search = gr.Textbox(label="Search a title", placeholder="e.g. star wars",
                                     elem_id="similar-search", scale=2)
            like = gr.Dropdown(rec.search(""), value=None, label="Movie",
                               allow_custom_value=True, elem_id="similar-movie", scale=3)
        similar_msg = gr.HTML(elem_id="similar-message")
        similar_out = gr.HTML(elem_id="similar-recs")
        like.change(on.similar, like, [similar_msg, similar_out], **QUICK)
    return like_search, like, similar_msg


def launch(rec: Recommender, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve the page until interrupted."""
    app, theme = build_app(rec)
    # No run history: it would copy the whole page state into the browser's
    # storage after every answer, several times the cost of the answer itself.
    # No uploads either: Gradio's upload route is open on every app, with
    # no size limit unless one is given.
    # quiet: Gradio's own lines give advice for Python callers (share=True
    # in launch()); the page's address is said here instead.
    app.launch(server_name=host, server_port=port, theme=theme, css=CSS, ssr_mode=False,
               run_history=False, max_file_size=MAX_UPLOAD, quiet=True,
               prevent_thread_lock=True)
    print(f"mfrec demo: serving {app.local_url} (Ctrl-C stops it)", flush=True)
    try:
        while app.is_running:
            time.sleep(0.2)
    finally:
        app.close(verbose=False)
