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
    int exclude_seen, n_threads, status;
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
        if (!(users = as_array(uo, NPY_INT32, 1, "users")))
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
    if (lists_new(n_query, n, &items, &scores, &counts, &out) < 0)
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_recommend(&v.m, n_query, users ? PyArray_DATA(users) : NULL,
                           exclude_seen ? &seen : NULL,
                           pool ? (int32_t)PyArray_DIM(pool, 0) : 0,
                           pool ? PyArray_DATA(pool) : NULL, &out, n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "recommend (users, pool or the training-item index)");
        goto cleanup;
    }
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

BINDING_ARGS(recommend_vector, "(model, x, bias, skip, pool, n)",
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
    int n_threads = 1, status;
    PyArrayObject *F = NULL, *query = NULL, *pool = NULL;
    PyArrayObject *items = NULL, *scores = NULL, *counts = NULL;
    mfr_topn_lists out;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOn|Oi", kwlist, &fo, &qo, &n, &po,
                                     &n_threads))
        return NULL;
    if (!(F = as_array(fo, NPY_FLOAT32, 2, "factors")) ||
        !(query = as_array(qo, NPY_INT32, 1, "query")) || pool_get(po, &pool) < 0 ||
        check_int32_size(PyArray_DIM(F, 0), "len(factors)") < 0 ||
        check_int32_size(PyArray_DIM(F, 1), "the number of factors") < 0)
        goto cleanup;
    if (lists_new(PyArray_DIM(query, 0), n, &items, &scores, &counts, &out) < 0)
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_similar((int32_t)PyArray_DIM(F, 0), (int32_t)PyArray_DIM(F, 1),
                         PyArray_DATA(F), PyArray_DIM(query, 0), PyArray_DATA(query),
                         pool ? (int32_t)PyArray_DIM(pool, 0) : 0,
                         pool ? PyArray_DATA(pool) : NULL, &out, n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "similar (query or factors)");
        goto cleanup;
    }
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
