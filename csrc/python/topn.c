/*
 * topn.c - binding of csrc/core/topn.c: top-N lists of the model's users,
 * of a user given by a factor vector, and cosine neighbours.
 */
#include "binding.h"

/* Output arrays for n_query lists of length n; -1 with an exception set
 * if n is not >= 1 or an allocation fails. */
static int lists_new(npy_intp n_query, Py_ssize_t n, PyArrayObject **items,
                     PyArrayObject **scores, PyArrayObject **counts, mfr_topn_lists *out)
{
    if (n < 1 || n > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "n must be an integer >= 1, got %zd", n);
        return -1;
    }
    npy_intp dims[2] = {n_query, n};
    if (!(*items = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_INT32)) ||
        !(*scores = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT32)) ||
        !(*counts = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_INT32)))
        return -1;
    out->n = (int32_t)n;
    out->items = PyArray_DATA(*items);
    out->scores = PyArray_DATA(*scores);
    out->counts = PyArray_DATA(*counts);
    return 0;
}

/* Long top-N calls run in chunks of queries with the GIL released, and
 * Ctrl-C is checked between chunks (KeyboardInterrupt within a chunk's
 * time, not after the whole call). A chunk is about 2**34 multiply-adds
 * (a fraction of a second on one core) and a multiple of the core's 8
 * blocks of 512 queries; the lists do not depend on the chunking. */
typedef struct {
    mfr_model *m;           /* recommend: the model */
    const mfr_csr *seen;    /* recommend: skip lists, or NULL */
    const int32_t *query;   /* the query rows, one per list */
    int32_t n_rows, k;      /* similar: F's shape */
    const float *F;         /* similar: the rows, or NULL for recommend */
    int32_t n_pool;
    const int32_t *pool;
    int n_threads;
} topn_call;

static int topn_chunk(const topn_call *c, int64_t q0, int64_t len, mfr_topn_lists *part)
{
    if (c->F)
        return mfr_similar(c->n_rows, c->k, c->F, len, c->query + q0, c->n_pool, c->pool, part,
                           c->n_threads);
    return mfr_recommend(c->m, len, c->query + q0, c->seen, c->n_pool, c->pool, part,
                         c->n_threads);
}

/* Run c over n_query lists into out; -1 with an exception set on a status
 * (named by `what`) or an interruption. */
static int topn_run_chunked(const topn_call *c, npy_intp n_query, int32_t n_targets,
                            mfr_topn_lists *out, const char *what)
{
    const int64_t per_query = (int64_t)(n_targets > 1 ? n_targets : 1) * (c->k > 1 ? c->k : 1);
    int64_t chunk = ((int64_t)1 << 34) / per_query;
    chunk = (chunk / 4096 + 1) * 4096;
    for (npy_intp q0 = 0; q0 == 0 || q0 < n_query; q0 += chunk) {
        const int64_t len = n_query - q0 < chunk ? n_query - q0 : chunk;
        const size_t at = (size_t)q0 * (size_t)out->n;
        mfr_topn_lists part = {out->n, out->items + at, out->scores + at, out->counts + q0};
        int status;
        Py_BEGIN_ALLOW_THREADS
        status = topn_chunk(c, q0, len, &part);
        Py_END_ALLOW_THREADS
        if (status != MFR_OK) {
            raise_status(status, what);
            return -1;
        }
        if (PyErr_CheckSignals() < 0)
            return -1;
    }
    return 0;
}

/* An optional candidate pool (None or int32 indices); -1 on error. */
static int pool_get(PyObject *obj, PyArrayObject **pool)
{
    *pool = NULL;
    if (obj == Py_None)
        return 0;
    if (!(*pool = as_array(obj, NPY_INT32, 1, "pool")))
        return -1;
    return check_int32_size(PyArray_DIM(*pool, 0), "len(pool)");
}

BINDING_KW(recommend, "(model, users, n, *, exclude_seen, pool, n_threads)",
"Top-n lists for user indices (int32; None = every user): returns (items\n"
"int32, scores float32, counts int32), rows best first (higher score, then\n"
"lower index), padded with -1 / NaN after counts[r] entries.\n"
"exclude_seen skips each user's training items (seen_indptr/seen_indices);\n"
"pool (strictly ascending item indices, or None) restricts the candidates.")
{
    static char *kwlist[] = {"model", "users", "n", "exclude_seen", "pool", "n_threads", NULL};
    PyObject *mo, *uo, *po, *result = NULL;
    Py_ssize_t n;
    int exclude_seen, n_threads;
    PyArrayObject *users = NULL, *pool = NULL, *indptr = NULL, *indices = NULL;
    PyArrayObject *items = NULL, *scores = NULL, *counts = NULL;
    mfr_topn_lists out;
    model_view v = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOn$pOi", kwlist, &mo, &uo, &n,
                                     &exclude_seen, &po, &n_threads))
        return NULL;
    ModelObject *model = as_model(module, mo);
    if (!model || model_view_get(model, &v, 0) < 0)
        goto cleanup;
    npy_intp n_query = v.m.n_users;
    if (uo != Py_None) {
        if (!(users = as_indices(uo, NPY_INT32, 1, "users")))
            goto cleanup;
        n_query = PyArray_DIM(users, 0);
    }
    if (pool_get(po, &pool) < 0)
        goto cleanup;
    mfr_csr seen = {0};
    if (exclude_seen) {
        indptr = model->seen_indptr;
        indices = model->seen_indices;
        if (!indptr || !indices || PyArray_DIM(indptr, 0) != (npy_intp)v.m.n_users + 1) {
            PyErr_SetString(PyExc_ValueError,
                            "exclude_seen: the model has no valid training-item index "
                            "(seen_indptr/seen_indices)");
            indptr = indices = NULL;
            goto cleanup;
        }
        Py_INCREF(indptr);
        Py_INCREF(indices);
        seen = (mfr_csr){v.m.n_users, v.m.n_items, PyArray_DIM(indices, 0),
                         PyArray_DATA(indptr), PyArray_DATA(indices), NULL};
    }
    if (!users && !(users = (PyArrayObject *)PyArray_Arange(0, (double)n_query, 1, NPY_INT32)))
        goto cleanup; /* every user: the queries 0..n_users-1, in chunks */
    if (lists_new(n_query, n, &items, &scores, &counts, &out) < 0)
        goto cleanup;
    topn_call c = {.m = &v.m, .seen = exclude_seen ? &seen : NULL, .query = PyArray_DATA(users),
                   .k = v.m.k, .n_pool = pool ? (int32_t)PyArray_DIM(pool, 0) : 0,
                   .pool = pool ? PyArray_DATA(pool) : NULL, .n_threads = n_threads};
    if (topn_run_chunked(&c, n_query, pool ? c.n_pool : v.m.n_items, &out,
                         "recommend (users, pool or the training-item index)") < 0)
        goto cleanup;
    result = PyTuple_Pack(3, items, scores, counts);
cleanup:
    model_view_release(&v);
    Py_XDECREF(users);
    Py_XDECREF(pool);
    Py_XDECREF(indptr);
    Py_XDECREF(indices);
    Py_XDECREF(items);
    Py_XDECREF(scores);
    Py_XDECREF(counts);
    return result;
}

BINDING_ARGS(recommend_vector, "(model, x, bias, skip, pool, n, /)",
"One top-n list for a user given by factors x (float32, k) and bias (used\n"
"when the model has biases), skipping the item indices in skip (int32).\n"
"Returns (items, scores, counts) as recommend, with one row.")
{
    PyObject *mo, *xo, *so, *po, *result = NULL;
    float bias;
    Py_ssize_t n;
    int status;
    PyArrayObject *x = NULL, *skip = NULL, *pool = NULL;
    PyArrayObject *items = NULL, *scores = NULL, *counts = NULL;
    mfr_topn_lists out;
    model_view v = {0};
    if (!PyArg_ParseTuple(args, "OOfOOn", &mo, &xo, &bias, &so, &po, &n))
        return NULL;
    ModelObject *model = as_model(module, mo);
    if (!model || model_view_get(model, &v, 0) < 0)
        goto cleanup;
    if (!(x = as_array(xo, NPY_FLOAT32, 1, "x")) ||
        !(skip = as_array(so, NPY_INT32, 1, "skip")) || pool_get(po, &pool) < 0 ||
        check_int32_size(PyArray_DIM(skip, 0), "len(skip)") < 0)
        goto cleanup;
    if (PyArray_DIM(x, 0) != v.m.k) {
        PyErr_Format(PyExc_ValueError, "x must have the model's %d factors, got %zd",
                     (int)v.m.k, (Py_ssize_t)PyArray_DIM(x, 0));
        goto cleanup;
    }
    if (lists_new(1, n, &items, &scores, &counts, &out) < 0)
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_recommend_vector(&v.m, PyArray_DATA(x), bias, (int32_t)PyArray_DIM(skip, 0),
                                  PyArray_DATA(skip), pool ? (int32_t)PyArray_DIM(pool, 0) : 0,
                                  pool ? PyArray_DATA(pool) : NULL, &out);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "recommend_vector (skip or pool)");
        goto cleanup;
    }
    result = PyTuple_Pack(3, items, scores, counts);
cleanup:
    model_view_release(&v);
    Py_XDECREF(x);
    Py_XDECREF(skip);
    Py_XDECREF(pool);
    Py_XDECREF(items);
    Py_XDECREF(scores);
    Py_XDECREF(counts);
    return result;
}

BINDING_KW(similar, "(factors, query, n, pool=None, n_threads=1)",
"Cosine neighbours among the rows of factors (float32, rows x k) for the\n"
"row indices in query (int32), each row itself skipped; a zero row has\n"
"cosine 0 with every row. pool (strictly ascending row indices, or None)\n"
"restricts the candidates. Returns (items, scores, counts) as recommend.")
{
    static char *kwlist[] = {"factors", "query", "n", "pool", "n_threads", NULL};
    PyObject *fo, *qo, *po = Py_None, *result = NULL;
    Py_ssize_t n;
    int n_threads = 1;
    PyArrayObject *F = NULL, *query = NULL, *pool = NULL;
    PyArrayObject *items = NULL, *scores = NULL, *counts = NULL;
    mfr_topn_lists out;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOn|Oi", kwlist, &fo, &qo, &n, &po,
                                     &n_threads))
        return NULL;
    if (!(F = as_array(fo, NPY_FLOAT32, 2, "factors")) ||
        !(query = as_indices(qo, NPY_INT32, 1, "query")) || pool_get(po, &pool) < 0 ||
        check_int32_size(PyArray_DIM(F, 0), "len(factors)") < 0 ||
        check_int32_size(PyArray_DIM(F, 1), "the number of factors") < 0)
        goto cleanup;
    if (lists_new(PyArray_DIM(query, 0), n, &items, &scores, &counts, &out) < 0)
        goto cleanup;
    topn_call c = {.query = PyArray_DATA(query), .n_rows = (int32_t)PyArray_DIM(F, 0),
                   .k = (int32_t)PyArray_DIM(F, 1), .F = PyArray_DATA(F),
                   .n_pool = pool ? (int32_t)PyArray_DIM(pool, 0) : 0,
                   .pool = pool ? PyArray_DATA(pool) : NULL, .n_threads = n_threads};
    if (topn_run_chunked(&c, PyArray_DIM(query, 0), pool ? c.n_pool : c.n_rows, &out,
                         "similar (query or factors)") < 0)
        goto cleanup;
    result = PyTuple_Pack(3, items, scores, counts);
cleanup:
    Py_XDECREF(F);
    Py_XDECREF(query);
    Py_XDECREF(pool);
    Py_XDECREF(items);
    Py_XDECREF(scores);
    Py_XDECREF(counts);
    return result;
}

PyMethodDef mfr_py_topn_functions[] = {METHOD(recommend), METHOD(recommend_vector),
                                       METHOD(similar), {NULL}};
