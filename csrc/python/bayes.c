/*
 * bayes.c - binding of csrc/core/bayes.c and ordinal.c: the Gibbs sampler's
 * steps (rows, feature rows, hyperpriors, noise) and the ordered probit,
 * called once per sweep by mfrec/algorithms/bayes.py.
 */
#include "binding.h" /* first: Python.h before any system header */

/* A float64 C-contiguous 2-D array with `cols` columns and, for rows >= 0,
 * that many rows; `out`: written in place (never a copy). */
static PyArrayObject *bayes_matrix(PyObject *obj, npy_intp rows, npy_intp cols, int out,
                                   const char *name)
{
    PyArrayObject *a;
    if (out) {
        if (!PyArray_Check(obj) || PyArray_TYPE((PyArrayObject *)obj) != NPY_FLOAT64 ||
            PyArray_NDIM((PyArrayObject *)obj) != 2 ||
            !PyArray_ISCARRAY((PyArrayObject *)obj)) {
            PyErr_Format(PyExc_TypeError, "%s: expected a writeable C-contiguous 2-D float64 "
                         "array", name);
            return NULL;
        }
        Py_INCREF(obj);
        a = (PyArrayObject *)obj;
    } else if (!(a = as_array(obj, NPY_FLOAT64, 2, name))) {
        return NULL;
    }
    if ((rows >= 0 && PyArray_DIM(a, 0) != rows) || (cols >= 0 && PyArray_DIM(a, 1) != cols) ||
        check_int32_size(PyArray_DIM(a, 0), name) < 0) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "%s: expected shape (%zd, %zd), got (%zd, %zd)", name,
                         (Py_ssize_t)rows, (Py_ssize_t)cols, (Py_ssize_t)PyArray_DIM(a, 0),
                         (Py_ssize_t)PyArray_DIM(a, 1));
        Py_DECREF(a);
        return NULL;
    }
    return a;
}

/* The prior (mean: groups x d, prec: groups x d x d, as 2-D groups x d*d). */
static int bayes_prior(PyObject *mo, PyObject *po, npy_intp groups, npy_intp d,
                       PyArrayObject **mean, PyArrayObject **prec)
{
    *mean = bayes_matrix(mo, groups, d, 0, "prior_mean");
    *prec = *mean ? bayes_matrix(po, groups, d * d, 0, "prior_prec") : NULL;
    return *prec ? 0 : -1;
}

/* The optional per-row Gram arrays (None, None) or (n x d*d, n x d). */
static int bayes_gram(PyObject *go, PyObject *bo, npy_intp n, npy_intp d, int out,
                      PyArrayObject **G, PyArrayObject **B)
{
    *G = *B = NULL;
    if ((go == Py_None) != (bo == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "gram and gram_rhs must both be given or both None");
        return -1;
    }
    if (go == Py_None)
        return 0;
    if (!(*G = bayes_matrix(go, n, d * d, out, "gram")) ||
        !(*B = bayes_matrix(bo, n, d, out, "gram_rhs"))) {
        Py_CLEAR(*G);
        return -1;
    }
    return 0;
}

static int bayes_check_noise(double mu, double alpha)
{
    if (!isfinite(mu) || !isfinite(alpha) || !(alpha > 0.0)) {
        PyErr_SetString(PyExc_ValueError, "mu must be finite and alpha finite and > 0");
        return -1;
    }
    return 0;
}

static PyObject *bayes_status(int status, const char *what)
{
    if (status == MFR_ENOTPD) {
        PyErr_Format(PyExc_FloatingPointError, "%s: a conditional precision is not positive "
                     "definite (the sampler diverged)", what);
        return NULL;
    }
    return raise_status(status, what);
}

BINDING_KW(bayes_rows, "(ratings, other, free, eff, prior_mean, prior_prec, *, mu, alpha,\n"
"           seed=0, stream=0, n_threads=1, gram=None, gram_rhs=None)",
"Draw every free row of one side (mfr_bayes_rows): ratings is\n"
"this side's CSR (indptr, indices, values float32), other the other side's\n"
"effective rows (float64, n_other x d), free and eff (float64, n x d)\n"
"are updated in place; the prior is N(prior_mean (1 x d),\n"
"prior_prec (1 x d*d)^-1). gram / gram_rhs (float64, n x d*d and n x d),\n"
"optional, receive each row's sum x x^T and sum x (r - mu - V_i[k]).")
{
    static char *kwlist[] = {"ratings", "other", "free", "eff", "prior_mean", "prior_prec",
                             "mu", "alpha", "seed", "stream", "n_threads", "gram", "gram_rhs",
                             NULL};
    PyObject *ro, *oo, *fo, *eo, *mo, *po, *go = Py_None, *bo = Py_None, *result = NULL;
    PyArrayObject *other = NULL, *fr = NULL, *ef = NULL, *mean = NULL, *prec = NULL,
                  *G = NULL, *B = NULL;
    double mu = NAN, alpha = NAN; /* required: NaN fails the check */
    unsigned long long seed = 0, stream = 0;
    int n_threads = 1, status;
    csr_view R = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOO|$ddKKiOO", kwlist, &ro, &oo, &fo,
                                     &eo, &mo, &po, &mu, &alpha, &seed, &stream, &n_threads,
                                     &go, &bo) ||
        bayes_check_noise(mu, alpha) < 0 || !(other = bayes_matrix(oo, -1, -1, 0, "other")))
        return NULL;
    npy_intp d = PyArray_DIM(other, 1);
    if (d < 2) {
        PyErr_SetString(PyExc_ValueError, "other: needs d >= 2 columns (factors and bias)");
        goto cleanup;
    }
    if (csr_view_get(&R, ro, PyArray_DIM(other, 0), "ratings") < 0 ||
        !(fr = bayes_matrix(fo, R.csr.n_rows, d, 1, "free")) ||
        !(ef = bayes_matrix(eo, R.csr.n_rows, d, 1, "eff")) ||
        bayes_prior(mo, po, 1, d, &mean, &prec) < 0 ||
        bayes_gram(go, bo, R.csr.n_rows, d, 1, &G, &B) < 0)
        goto cleanup;
    mfr_bayes_side s = {R.csr, (int32_t)d, PyArray_DATA(fr), PyArray_DATA(ef),
                        PyArray_DATA(mean), PyArray_DATA(prec), mu, alpha,
                        G ? PyArray_DATA(G) : NULL, B ? PyArray_DATA(B) : NULL};
    Py_BEGIN_ALLOW_THREADS
    status = mfr_bayes_rows(&s, PyArray_DATA(other), (int32_t)PyArray_DIM(other, 0), seed,
                            stream, n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK)
        bayes_status(status, "bayes_rows");
    else
        result = Py_NewRef(Py_None);
cleanup:
    csr_view_release(&R);
    Py_XDECREF(other);
    Py_XDECREF(fr);
    Py_XDECREF(ef);
    Py_XDECREF(mean);
    Py_XDECREF(prec);
    Py_XDECREF(G);
    Py_XDECREF(B);
    return result;
}

BINDING_KW(bayes_features, "(ratings, other, eff, features, group, Y, prior_mean, prior_prec,\n"
"               *, mu, alpha, seed=0, stream=0, n_threads=1, gram=None,\n"
"               gram_rhs=None)",
"Draw every feature row Y (float64, n_features x d, in place) of one side\n"
"in order (mfr_bayes_features); features is the CSR (indptr, indices,\n"
"weights float32) of the rows that have each feature, group (int32) each\n"
"feature's prior group, prior_mean (groups x d), prior_prec (groups x d*d).\n"
"eff (n x d) moves with the features. gram / gram_rhs: what bayes_rows\n"
"wrote for the same other side (computed here when None).")
{
    static char *kwlist[] = {"ratings", "other", "eff", "features", "group", "Y",
                             "prior_mean", "prior_prec", "mu", "alpha", "seed", "stream",
                             "n_threads", "gram", "gram_rhs", NULL};
    PyObject *ro, *oo, *eo, *xo, *go, *yo, *mo, *po, *gro = Py_None, *bo = Py_None,
             *result = NULL;
    PyArrayObject *other = NULL, *ef = NULL, *group = NULL, *Y = NULL, *mean = NULL,
                  *prec = NULL, *G = NULL, *B = NULL;
    double mu = NAN, alpha = NAN; /* required: NaN fails the check */
    unsigned long long seed = 0, stream = 0;
    int n_threads = 1, status;
    csr_view R = {0}, XT = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOO|$ddKKiOO", kwlist, &ro, &oo, &eo,
                                     &xo, &go, &yo, &mo, &po, &mu, &alpha, &seed, &stream,
                                     &n_threads, &gro, &bo) ||
        bayes_check_noise(mu, alpha) < 0 || !(other = bayes_matrix(oo, -1, -1, 0, "other")))
        return NULL;
    npy_intp d = PyArray_DIM(other, 1);
    if (csr_view_get(&R, ro, PyArray_DIM(other, 0), "ratings") < 0 ||
        !(ef = bayes_matrix(eo, R.csr.n_rows, d, 1, "eff")) ||
        csr_view_get(&XT, xo, R.csr.n_rows, "features") < 0 ||
        !(Y = bayes_matrix(yo, XT.csr.n_rows, d, 1, "Y")) ||
        !(group = as_array(go, NPY_INT32, 1, "group")))
        goto cleanup;
    if (PyArray_DIM(group, 0) != XT.csr.n_rows || d < 2) {
        PyErr_SetString(PyExc_ValueError, "group must have one entry per feature, and d >= 2");
        goto cleanup;
    }
    mean = bayes_matrix(mo, -1, d, 0, "prior_mean");
    if (!mean || !(prec = bayes_matrix(po, PyArray_DIM(mean, 0), d * d, 0, "prior_prec")) ||
        bayes_gram(gro, bo, R.csr.n_rows, d, 0, &G, &B) < 0)
        goto cleanup;
    mfr_bayes_side s = {R.csr, (int32_t)d, NULL, PyArray_DATA(ef), NULL, NULL, mu, alpha,
                        G ? PyArray_DATA(G) : NULL, B ? PyArray_DATA(B) : NULL};
    mfr_bayes_group f = {XT.csr, PyArray_DATA(group), (int32_t)PyArray_DIM(mean, 0),
                            PyArray_DATA(Y), PyArray_DATA(mean), PyArray_DATA(prec)};
    Py_BEGIN_ALLOW_THREADS
    status = mfr_bayes_features(&s, &f, PyArray_DATA(other), (int32_t)PyArray_DIM(other, 0),
                                seed, stream, n_threads);
    Py_END_ALLOW_THREADS
    if (status == MFR_EINDEX)
        PyErr_SetString(PyExc_IndexError, "bayes_features: group out of range");
    else if (status != MFR_OK)
        bayes_status(status, "bayes_features");
    else
        result = Py_NewRef(Py_None);
cleanup:
    csr_view_release(&R);
    csr_view_release(&XT);
    Py_XDECREF(other);
    Py_XDECREF(ef);
    Py_XDECREF(group);
    Py_XDECREF(Y);
    Py_XDECREF(mean);
    Py_XDECREF(prec);
    Py_XDECREF(G);
    Py_XDECREF(B);
    return result;
}

BINDING_ARGS(bayes_hyper, "(rows, k, seed, stream, /)",
"One draw of a group's prior (mean (d,), prec (d, d)) given its rows\n"
"(float64, n x d): Normal-Wishart over the first k columns (m0 = 0,\n"
"beta0 = 1, nu0 = k, W0 = I), Normal-Gamma (a0 = b0 = beta0 = 1) for the rest.")
{
    PyObject *ro;
    int k, status;
    unsigned long long seed, stream;
    if (!PyArg_ParseTuple(args, "OiKK", &ro, &k, &seed, &stream))
        return NULL;
    PyArrayObject *rows = bayes_matrix(ro, -1, -1, 0, "rows");
    if (!rows)
        return NULL;
    npy_intp d = PyArray_DIM(rows, 1), dims[2] = {d, d};
    PyArrayObject *mean = NULL, *prec = NULL;
    if (k < 0 || k > d || d < 1) {
        PyErr_Format(PyExc_ValueError, "k must be in [0, %zd], got %d", (Py_ssize_t)d, k);
        goto fail;
    }
    mean = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    prec = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT64, 0);
    if (!mean || !prec)
        goto fail;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_bayes_hyper(PyArray_DATA(rows), PyArray_DIM(rows, 0), (int32_t)d, k, seed,
                             stream, PyArray_DATA(mean), PyArray_DATA(prec));
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        bayes_status(status, "bayes_hyper");
        goto fail;
    }
    Py_DECREF(rows);
    return Py_BuildValue("NN", mean, prec);
fail:
    Py_DECREF(rows);
    Py_XDECREF(mean);
    Py_XDECREF(prec);
    return NULL;
}

BINDING_ARGS(bayes_noise, "(n, sum_e, sum_e2, mu, alpha, seed, stream, /)",
"Draw (mu, alpha) given the n residuals' sum and sum of squares at mu\n"
"(mfr_bayes_noise).")
{
    long long n;
    double sum_e, sum_e2, mu, alpha;
    unsigned long long seed, stream;
    if (!PyArg_ParseTuple(args, "LddddKK", &n, &sum_e, &sum_e2, &mu, &alpha, &seed, &stream))
        return NULL;
    int status = mfr_bayes_noise(n, sum_e, sum_e2, &mu, &alpha, seed, stream);
    if (status != MFR_OK)
        return bayes_status(status, "bayes_noise");
    return Py_BuildValue("dd", mu, alpha);
}

/* bayes_predict (rows = 0: n predictions) and bayes_pair_rows (rows = 1:
 * n x d rows) of the pairs (a[e], b[e]) of rows of A and B. */
static PyObject *bayes_pairs(PyObject *ao, PyObject *bo, PyObject *Ao, PyObject *Bo, double mu,
                             int n_threads, int rows, const char *what)
{
    PyArrayObject *a = NULL, *b = NULL, *A = NULL, *B = NULL, *out = NULL;
    if (!(a = as_array(ao, NPY_INT32, 1, rows ? "a" : "users")) ||
        !(b = as_array(bo, NPY_INT32, 1, rows ? "b" : "items")) ||
        !(A = bayes_matrix(Ao, -1, -1, 0, rows ? "A" : "U")) ||
        !(B = bayes_matrix(Bo, -1, PyArray_DIM(A, 1), 0, rows ? "B" : "V")) ||
        same_length(a, b, rows ? "a" : "users", rows ? "b" : "items") < 0)
        goto cleanup;
    npy_intp dims[2] = {PyArray_DIM(a, 0), PyArray_DIM(A, 1)};
    int status = mfr_check_triplets(dims[0], PyArray_DATA(a), (int32_t)PyArray_DIM(A, 0),
                                    PyArray_DATA(b), (int32_t)PyArray_DIM(B, 0), NULL);
    if (status != MFR_OK || dims[1] < 2) {
        PyErr_Format(PyExc_IndexError, "%s: an index is out of range (or d < 2)", what);
        goto cleanup;
    }
    if (!(out = (PyArrayObject *)PyArray_EMPTY(rows ? 2 : 1, dims, NPY_FLOAT64, 0)))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    if (rows)
        mfr_bayes_pair_rows(dims[0], PyArray_DATA(a), PyArray_DATA(b), PyArray_DATA(A),
                            PyArray_DATA(B), (int32_t)dims[1], PyArray_DATA(out), n_threads);
    else
        mfr_bayes_predict(dims[0], PyArray_DATA(a), PyArray_DATA(b), PyArray_DATA(A),
                          PyArray_DATA(B), (int32_t)dims[1], mu, PyArray_DATA(out), n_threads);
    Py_END_ALLOW_THREADS
cleanup:
    Py_XDECREF(a);
    Py_XDECREF(b);
    Py_XDECREF(A);
    Py_XDECREF(B);
    return (PyObject *)out;
}

BINDING_ARGS(bayes_predict, "(users, items, U, V, mu, n_threads=1, /)",
"mu + U[u, :k] . V[i, :k] + U[u, k] + V[i, k] for each pair (float64).")
{
    PyObject *uo, *io, *Uo, *Vo;
    double mu;
    int n_threads = 1;
    if (!PyArg_ParseTuple(args, "OOOOd|i", &uo, &io, &Uo, &Vo, &mu, &n_threads))
        return NULL;
    return bayes_pairs(uo, io, Uo, Vo, mu, n_threads, 0, "bayes_predict");
}

BINDING_ARGS(bayes_pair_rows, "(a, b, A, B, n_threads=1, /)",
"Rows A[a] + B[b] (float64, n x d), the last column plus A[a, :k] . B[b, :k]\n"
"(k = d - 1): each rating's regressors and offset for the context group.")
{
    PyObject *ao, *bo, *Ao, *Bo;
    int n_threads = 1;
    if (!PyArg_ParseTuple(args, "OOOO|i", &ao, &bo, &Ao, &Bo, &n_threads))
        return NULL;
    return bayes_pairs(ao, bo, Ao, Bo, 0.0, n_threads, 1, "bayes_pair_rows");
}

/* The 1-D float64 latent predictions, int32 levels (same length) and
 * float64 cut points of the ordinal functions; -1 with an exception. */
static int ordinal_inputs(PyObject *po, PyObject *lo, PyObject *co, PyArrayObject **pred,
                          PyArrayObject **level, PyArrayObject **cuts)
{
    *pred = *level = *cuts = NULL;
    if (!(*pred = as_array(po, NPY_FLOAT64, 1, "pred")) ||
        !(*level = as_array(lo, NPY_INT32, 1, "level")) ||
        !(*cuts = as_array(co, NPY_FLOAT64, 1, "cuts")) ||
        same_length(*pred, *level, "pred", "level") < 0)
        return -1;
    if (PyArray_DIM(*cuts, 0) < 1 || check_int32_size(PyArray_DIM(*cuts, 0) + 1, "levels") < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "cuts: needs at least one cut point");
        return -1;
    }
    return 0;
}

static PyObject *ordinal_status(int status, const char *what)
{
    if (status == MFR_EINVAL) {
        PyErr_Format(PyExc_ValueError, "%s: cuts must be finite and increasing", what);
        return NULL;
    }
    if (status == MFR_EINDEX) {
        PyErr_Format(PyExc_IndexError, "%s: level out of range [0, len(cuts)]", what);
        return NULL;
    }
    return raise_status(status, what);
}

BINDING_ARGS(ordinal_latent, "(pred, level, cuts, seed, stream, n_threads=1, /)",
"z ~ N(pred, 1) truncated to each level's interval (mfr_ordinal_latent).")
{
    PyObject *po, *lo, *co;
    unsigned long long seed, stream;
    int n_threads = 1, status;
    PyArrayObject *pred, *level, *cuts, *z = NULL;
    if (!PyArg_ParseTuple(args, "OOOKK|i", &po, &lo, &co, &seed, &stream, &n_threads))
        return NULL;
    if (ordinal_inputs(po, lo, co, &pred, &level, &cuts) < 0)
        goto cleanup;
    npy_intp n = PyArray_DIM(pred, 0);
    if (!(z = (PyArrayObject *)PyArray_EMPTY(1, &n, NPY_FLOAT64, 0)))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_ordinal_latent(n, PyArray_DATA(pred), PyArray_DATA(level), PyArray_DATA(cuts),
                                (int32_t)PyArray_DIM(cuts, 0) + 1, seed, stream,
                                PyArray_DATA(z), n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        Py_CLEAR(z);
        ordinal_status(status, "ordinal_latent");
    }
cleanup:
    Py_XDECREF(pred);
    Py_XDECREF(level);
    Py_XDECREF(cuts);
    return (PyObject *)z;
}

BINDING_ARGS(ordinal_loglik, "(pred, level, cuts, n_threads=1, /)",
"sum log P(level | pred) under the ordered probit (mfr_ordinal_loglik).")
{
    PyObject *po, *lo, *co, *result = NULL;
    int n_threads = 1, status;
    double out = 0.0;
    PyArrayObject *pred, *level, *cuts;
    if (!PyArg_ParseTuple(args, "OOO|i", &po, &lo, &co, &n_threads))
        return NULL;
    if (ordinal_inputs(po, lo, co, &pred, &level, &cuts) < 0)
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_ordinal_loglik(PyArray_DIM(pred, 0), PyArray_DATA(pred), PyArray_DATA(level),
                                PyArray_DATA(cuts), (int32_t)PyArray_DIM(cuts, 0) + 1, &out,
                                n_threads);
    Py_END_ALLOW_THREADS
    result = status == MFR_OK ? PyFloat_FromDouble(out) : ordinal_status(status, "ordinal_loglik");
cleanup:
    Py_XDECREF(pred);
    Py_XDECREF(level);
    Py_XDECREF(cuts);
    return result;
}

BINDING_ARGS(ordinal_probs, "(pred, cuts, n_threads=1, /)",
"The level probabilities (n x levels) averaged over samples: pred is\n"
"n x S latent predictions, cuts S x (levels - 1) (mfr_ordinal_probs).")
{
    PyObject *po, *co;
    int n_threads = 1, status;
    PyArrayObject *pred = NULL, *cuts = NULL, *out = NULL;
    if (!PyArg_ParseTuple(args, "OO|i", &po, &co, &n_threads))
        return NULL;
    if (!(pred = bayes_matrix(po, -1, -1, 0, "pred")) ||
        !(cuts = bayes_matrix(co, PyArray_DIM(pred, 1), -1, 0, "cuts")))
        goto cleanup;
    npy_intp dims[2] = {PyArray_DIM(pred, 0), PyArray_DIM(cuts, 1) + 1};
    if (PyArray_DIM(pred, 1) < 1 || dims[1] < 2) {
        PyErr_SetString(PyExc_ValueError, "ordinal_probs: needs >= 1 sample and >= 1 cut point");
        goto cleanup;
    }
    if (!(out = (PyArrayObject *)PyArray_EMPTY(2, dims, NPY_FLOAT64, 0)))
        goto cleanup;
    Py_BEGIN_ALLOW_THREADS
    status = mfr_ordinal_probs(dims[0], (int32_t)PyArray_DIM(pred, 1), PyArray_DATA(pred),
                               PyArray_DATA(cuts), (int32_t)dims[1], PyArray_DATA(out),
                               n_threads);
    Py_END_ALLOW_THREADS
    if (status != MFR_OK) {
        Py_CLEAR(out);
        raise_status(status, "ordinal_probs");
    }
cleanup:
    Py_XDECREF(pred);
    Py_XDECREF(cuts);
    return (PyObject *)out;
}

PyMethodDef mfr_py_bayes_functions[] = {
    METHOD(bayes_rows),      METHOD(bayes_features), METHOD(bayes_hyper),
    METHOD(bayes_noise),     METHOD(bayes_predict),  METHOD(bayes_pair_rows),
    METHOD(ordinal_latent),  METHOD(ordinal_loglik), METHOD(ordinal_probs), {NULL}};
