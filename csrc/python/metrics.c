/*
 * metrics.c - binding of csrc/core/metrics.c: accuracy of predictions and
 * ranking metrics of top-N lists; and of predict.c's squared errors over
 * the training ratings (a fit's train RMSE).
 */
#include "binding.h"

BINDING_ARGS(rmse_mae, "(predictions, truth, /)",
"Root mean squared and mean absolute error (float32 inputs, double sums).")
{
    PyObject *po, *to, *result = NULL;
    PyArrayObject *pred = NULL, *truth = NULL;
    double rmse = 0.0, mae = 0.0;
    int status;
    if (!PyArg_ParseTuple(args, "OO", &po, &to))
        return NULL;
    if (!(pred = as_array(po, NPY_FLOAT32, 1, "predictions")) ||
        !(truth = as_array(to, NPY_FLOAT32, 1, "truth")))
        goto cleanup;
    npy_intp n = same_length(pred, truth, "predictions", "truth");
    if (n < 0)
        goto cleanup;
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "rmse_mae: no predictions to score");
        goto cleanup;
    }
    Py_BEGIN_ALLOW_THREADS
    status = mfr_rmse_mae(n, PyArray_DATA(pred), PyArray_DATA(truth), &rmse, &mae);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "rmse_mae");
        goto cleanup;
    }
    result = Py_BuildValue("(dd)", rmse, mae);
cleanup:
    Py_XDECREF(pred);
    Py_XDECREF(truth);
    return result;
}

BINDING_KW(predict_sse, "(model, by_user, n_threads=1)",
"Sum of squared errors of the model's predictions over the ratings of\n"
"by_user (build_csr's tuple of the training pairs: n_users rows, n_items\n"
"columns): each prediction the float32 that _predict returns, the squares\n"
"summed in double in an order that does not depend on n_threads; inf or\n"
"nan if a prediction is not finite (mfr_predict_sse).")
{
    static char *kwlist[] = {"model", "by_user", "n_threads", NULL};
    PyObject *mo, *ro, *result = NULL;
    int n_threads = 1, status;
    double sse = 0.0;
    model_view v = {0};
    csr_view R = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|i", kwlist, &mo, &ro, &n_threads))
        return NULL;
    ModelObject *model = as_model(module, mo);
    if (!model || model_view_get(model, &v, 0) < 0 ||
        csr_view_get_by_user(&R, ro, &v.m, "by_user") < 0)
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_predict_sse(&v.m, &R.csr, n_threads, &sse);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, "predict_sse");
        goto cleanup;
    }
    result = PyFloat_FromDouble(sse);
cleanup:
    model_view_release(&v);
    csr_view_release(&R);
    return result;
}

BINDING_KW(ranking_metrics, "(recommended, rel_indptr, rel_indices, n_items, n_threads=1)",
"Ranking metrics at k = recommended.shape[1] (see mfr_ranking_metrics):\n"
"recommended (int32, users x k, -1 = empty rank), the relevant labels as a\n"
"CSR (int64 indptr, int32 indices ascending per user). Returns (dict of the\n"
"means, coverage and n_evaluated; per-user array users x 5 of precision,\n"
"recall, ndcg, ap, hit, NaN for users with no relevant label).")
{
    static char *kwlist[] = {"recommended", "rel_indptr", "rel_indices", "n_items",
                             "n_threads", NULL};
    PyObject *ro, *po, *io, *result = NULL;
    Py_ssize_t n_items;
    int n_threads = 1, status;
    PyArrayObject *rec = NULL, *indptr = NULL, *indices = NULL, *per_user = NULL;
    mfr_ranking r;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOn|i", kwlist, &ro, &po, &io, &n_items,
                                     &n_threads))
        return NULL;
    if (!(rec = as_indices(ro, NPY_INT32, 2, "recommended")) ||
        !(indptr = as_indices(po, NPY_INT64, 1, "rel_indptr")) ||
        !(indices = as_indices(io, NPY_INT32, 1, "rel_indices")))
        goto cleanup;
    npy_intp n_users = PyArray_DIM(rec, 0), k = PyArray_DIM(rec, 1);
    if (n_items < 1 || n_items > INT32_MAX || k < 1 || k > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError,
                        "ranking_metrics: need n_items >= 1 and at least one rank (k >= 1)");
        goto cleanup;
    }
    if (PyArray_DIM(indptr, 0) != n_users + 1 ||
        ((const int64_t *)PyArray_DATA(indptr))[n_users] != PyArray_DIM(indices, 0)) {
        PyErr_SetString(PyExc_ValueError,
                        "rel_indptr must have one entry per user plus one, ending at "
                        "len(rel_indices)");
        goto cleanup;
    }
    npy_intp dims[2] = {n_users, MFR_RANK_METRICS};
    if (!(per_user = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_FLOAT64)))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_ranking_metrics(n_users, (int32_t)k, PyArray_DATA(rec), PyArray_DATA(indptr),
                                 PyArray_DATA(indices), (int32_t)n_items,
                                 PyArray_DATA(per_user), &r, n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        raise_status(status, status == MFR_EINDEX
                                 ? "ranking_metrics: a recommended item is outside [-1, n_items)"
                             : status == MFR_EDUPLICATE
                                 ? "ranking_metrics: a list repeats a relevant item"
                                 : "ranking_metrics: relevant labels must be >= 0 and "
                                   "strictly ascending per user");
        goto cleanup;
    }
    result = Py_BuildValue("({s:d,s:d,s:d,s:d,s:d,s:d,s:L}O)", "precision", r.precision,
                           "recall", r.recall, "ndcg", r.ndcg, "map", r.map, "hit_rate",
                           r.hit_rate, "coverage", r.coverage, "n_evaluated",
                           (long long)r.n_evaluated, per_user);
cleanup:
    Py_XDECREF(rec);
    Py_XDECREF(indptr);
    Py_XDECREF(indices);
    Py_XDECREF(per_user);
    return result;
}

PyMethodDef mfr_py_metrics_functions[] = {METHOD(rmse_mae), METHOD(predict_sse),
                                          METHOD(ranking_metrics),
                                          {NULL}};
