/*
 * sgd.c - binding of csrc/core/sgd.c: one SGD epoch, with or without side
 * features. Both take and check the model, the ratings and the parameters
 * alike (sgd_call_get); they differ in the features and the threads.
 */
#include "binding.h"

/* Negative sampling's arguments: negatives >= 0, a finite negative_rating,
 * and with negatives the CSR by user of the training pairs. */
static int sgd_rated_get(const mfr_sgd_params *p, PyObject *rated_o, const mfr_model *m,
                         csr_view *rated)
{
    if (p->negatives < 0 || !isfinite(p->negative_rating)) {
        PyErr_Format(PyExc_ValueError,
                     "sgd: need negatives >= 0 and a finite negative_rating; got %d and %g",
                     p->negatives, (double)p->negative_rating);
        return -1;
    }
    if (p->negatives == 0)
        return 0;
    if (rated_o == Py_None) {
        PyErr_SetString(PyExc_ValueError, "sgd: negatives > 0 needs rated (the CSR by user)");
        return -1;
    }
    return csr_view_get_by_user(rated, rated_o, m, "rated");
}

/* What both epochs take: the model's arrays, the ratings (int32 users and
 * items, float32 ratings, one of each per rating, at least one), the
 * parameters and, with negatives, the CSR by user of the training pairs. */
typedef struct {
    mfr_sgd_params p;
    int epoch;
    model_view v;
    csr_view rated;
    PyArrayObject *users, *items, *ratings;
    npy_intp n;
} sgd_call;

static void sgd_call_release(sgd_call *c)
{
    model_view_release(&c->v);
    csr_view_release(&c->rated);
    Py_CLEAR(c->users);
    Py_CLEAR(c->items);
    Py_CLEAR(c->ratings);
}

/* Check and convert the parsed arguments of `what` into c (c->p and
 * c->epoch as parsed); -1 with an exception naming the argument. */
static int sgd_call_get(PyObject *module, sgd_call *c, const char *what, PyObject *mo,
                        PyObject *uo, PyObject *io, PyObject *ro, PyObject *rated_o)
{
    ModelObject *model = as_model(module, mo);
    if (!model || model_view_get(model, &c->v, c->p.biases) < 0 ||
        sgd_rated_get(&c->p, rated_o, &c->v.m, &c->rated) < 0)
        return -1;
    if (!(c->users = as_indices(uo, NPY_INT32, 1, "users")) ||
        !(c->items = as_indices(io, NPY_INT32, 1, "items")) ||
        !(c->ratings = as_array(ro, NPY_FLOAT32, 1, "ratings")))
        return -1;
    c->n = same_length(c->users, c->items, "users", "items");
    if (c->n < 0 || same_length(c->users, c->ratings, "users", "ratings") < 0)
        return -1;
    if (c->n == 0) {
        PyErr_Format(PyExc_ValueError, "%s: no ratings (empty arrays)", what);
        return -1;
    }
    const mfr_sgd_params *p = &c->p;
    if (!(p->learning_rate > 0.0f) || !isfinite(p->learning_rate) ||
        !(p->regularization >= 0.0f) || !isfinite(p->regularization) || c->epoch < 0) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "%s: need learning_rate > 0, regularization >= 0 (finite) and "
                 "epoch >= 0; got %g, %g and %d",
                 what, (double)p->learning_rate, (double)p->regularization, c->epoch);
        PyErr_SetString(PyExc_ValueError, msg);
        return -1;
    }
    return 0;
}

/* The epoch's result: its loss, or the exception of its status. */
static PyObject *sgd_result(int status, double loss, const char *what)
{
    return status == MFR_OK ? PyFloat_FromDouble(loss) : raise_status(status, what);
}

BINDING_KW(sgd_epoch, "(model, users, items, ratings, *, learning_rate=0.005,\n"
"          regularization=0.02, biases=True, seed=0, epoch=0, n_threads=1,\n"
"          negatives=0, negative_rating=0.0, rated=None)",
"One SGD epoch over int32 index arrays and float32 ratings, updating the\n"
"model's arrays in place. Returns the mean squared error of the updates.\n"
"FloatingPointError if the iteration diverges. negatives > 0 also trains\n"
"that many unrated items per rating towards negative_rating; rated is then\n"
"the CSR by user (build_csr's tuple) of the training pairs.")
{
    static char *kwlist[] = {"model", "users", "items", "ratings", "learning_rate",
                             "regularization", "biases", "seed", "epoch", "n_threads",
                             "negatives", "negative_rating", "rated", NULL};
    PyObject *mo, *uo, *io, *ro, *rated_o = Py_None, *result = NULL;
    sgd_call c = {.p = mfr_sgd_default_params()};
    unsigned long long seed = 0;
    int status;
    double loss = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO|$ffpKiiifO", kwlist, &mo, &uo, &io, &ro,
                                     &c.p.learning_rate, &c.p.regularization, &c.p.biases,
                                     &seed, &c.epoch, &c.p.n_threads, &c.p.negatives,
                                     &c.p.negative_rating, &rated_o))
        return NULL;
    c.p.seed = seed;
    if (sgd_call_get(module, &c, "sgd_epoch", mo, uo, io, ro, rated_o) == 0) {
        Py_BEGIN_ALLOW_THREADS
        status = mfr_sgd_epoch(&c.v.m, &c.p, c.n, PyArray_DATA(c.users), PyArray_DATA(c.items),
                               PyArray_DATA(c.ratings), c.p.negatives ? &c.rated.csr : NULL,
                               c.epoch, &loss);
        Py_END_ALLOW_THREADS
        result = sgd_result(status, loss, "sgd_epoch");
    }
    sgd_call_release(&c);
    return result;
}

BINDING_KW(sgd_epoch_features, "(model, users, items, ratings, *, user_features=None,\n"
"                   item_features=None, learning_rate=0.005,\n"
"                   regularization=0.02, biases=True, seed=0, epoch=0,\n"
"                   negatives=0, negative_rating=0.0, rated=None)",
"One sequential SGD epoch of the model with side features. `model` holds\n"
"the free factors and biases; user_features and item_features are None or\n"
"(indptr, indices, weights, factors, bias or None) with one row per user\n"
"(item) of the model; factors and biases are updated in place. Returns\n"
"the mean squared error of the updates. Negatives as in sgd_epoch.")
{
    static char *kwlist[] = {"model", "users", "items", "ratings", "user_features",
                             "item_features", "learning_rate", "regularization", "biases",
                             "seed", "epoch", "negatives", "negative_rating", "rated", NULL};
    PyObject *mo, *uo, *io, *ro, *ufo = Py_None, *ifo = Py_None, *rated_o = Py_None;
    PyObject *result = NULL;
    sgd_call c = {.p = mfr_sgd_default_params()};
    unsigned long long seed = 0;
    int status, has_uf = 0, has_if = 0;
    double loss = 0.0;
    features_view uf = {0}, itf = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO|$OOffpKiifO", kwlist, &mo, &uo, &io,
                                     &ro, &ufo, &ifo, &c.p.learning_rate, &c.p.regularization,
                                     &c.p.biases, &seed, &c.epoch, &c.p.negatives,
                                     &c.p.negative_rating, &rated_o))
        return NULL;
    c.p.seed = seed;
    if (sgd_call_get(module, &c, "sgd_epoch_features", mo, uo, io, ro, rated_o) == 0 &&
        features_view_get(ufo, &uf, c.v.m.n_users, c.v.m.k, "user_features", &has_uf) == 0 &&
        features_view_get(ifo, &itf, c.v.m.n_items, c.v.m.k, "item_features", &has_if) == 0) {
        Py_BEGIN_ALLOW_THREADS
        status = mfr_sgd_epoch_features(&c.v.m, has_uf ? &uf.f : NULL, has_if ? &itf.f : NULL,
                                        &c.p, c.n, PyArray_DATA(c.users), PyArray_DATA(c.items),
                                        PyArray_DATA(c.ratings),
                                        c.p.negatives ? &c.rated.csr : NULL, c.epoch, &loss);
        Py_END_ALLOW_THREADS
        result = sgd_result(status, loss, "sgd_epoch_features");
    }
    features_view_release(&uf);
    features_view_release(&itf);
    sgd_call_release(&c);
    return result;
}

PyMethodDef mfr_py_sgd_functions[] = {METHOD(sgd_epoch), METHOD(sgd_epoch_features), {NULL}};
