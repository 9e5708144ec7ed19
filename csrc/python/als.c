/*
 * als.c - binding of csrc/core/als.c: one weighted-least-squares
 * half-step, the kernel of explicit ALS, weighted MF and implicit ALS.
 */
#include "binding.h"

/* An optional 1-D float32 array of length n (None -> NULL), `writeable`
 * for outputs. Returns -1 with an exception naming the argument. */
static int als_vector(PyObject *obj, npy_intp n, int writeable, const char *name,
                      PyArrayObject **out)
{
    *out = NULL;
    if (obj == Py_None)
        return 0;
    *out = writeable ? as_output(obj, NPY_FLOAT32, 1, name) : as_array(obj, NPY_FLOAT32, 1, name);
    if (!*out)
        return -1;
    if (PyArray_DIM(*out, 0) != n) {
        PyErr_Format(PyExc_ValueError, "%s must have length %zd, got %zd", name, (Py_ssize_t)n,
                     (Py_ssize_t)PyArray_DIM(*out, 0));
        Py_CLEAR(*out);
        return -1;
    }
    return 0;
}

static int als_check_param(float v, const char *name)
{
    if (!(v >= 0.0f) || !isfinite(v)) {
        PyObject *shown = PyFloat_FromDouble(v);
        if (shown)
            PyErr_Format(PyExc_ValueError, "%s must be a finite number >= 0, got %R", name,
                         shown);
        Py_XDECREF(shown);
        return -1;
    }
    return 0;
}

/* The optional k x k float32 Gram matrix (None -> NULL). */
static int als_gram(PyObject *obj, npy_intp k, PyArrayObject **out)
{
    *out = NULL;
    if (obj == Py_None)
        return 0;
    if (!(*out = as_array(obj, NPY_FLOAT32, 2, "gram")))
        return -1;
    if (PyArray_DIM(*out, 0) != k || PyArray_DIM(*out, 1) != k) {
        PyErr_Format(PyExc_ValueError, "gram must be %zd x %zd (X.shape[1] squared), got "
                     "%zd x %zd", (Py_ssize_t)k, (Py_ssize_t)k, (Py_ssize_t)PyArray_DIM(*out, 0),
                     (Py_ssize_t)PyArray_DIM(*out, 1));
        Py_CLEAR(*out);
        return -1;
    }
    return 0;
}

/* The parameters besides the arrays: finite, in range, and consistent
 * (the solver by name, biases in pairs and only without unobserved weight). */
static int als_params_check(mfr_als_params *p, float offset, const char *solver,
                            PyObject *xbo, PyObject *ybo)
{
    if (als_check_param(p->regularization, "regularization") < 0 ||
        als_check_param(p->unobserved_weight, "unobserved_weight") < 0 ||
        als_check_param(p->alpha, "alpha") < 0)
        return -1;
    if (!isfinite(offset)) {
        PyErr_SetString(PyExc_ValueError, "offset must be finite");
        return -1;
    }
    if (strcmp(solver, "cholesky") == 0) {
        p->solver = MFR_ALS_CHOLESKY;
    } else if (strcmp(solver, "cg") == 0) {
        p->solver = MFR_ALS_CG;
        if (p->cg_steps < 1) {
            PyErr_Format(PyExc_ValueError, "cg_steps must be >= 1, got %d", p->cg_steps);
            return -1;
        }
    } else {
        PyErr_Format(PyExc_ValueError, "solver must be 'cholesky' or 'cg', got '%s'", solver);
        return -1;
    }
    if ((xbo == Py_None) != (ybo == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "x_bias and y_bias must both be given or both be None");
        return -1;
    }
    if (xbo != Py_None && p->unobserved_weight != 0.0f) {
        PyErr_SetString(PyExc_ValueError, "biases need unobserved_weight == 0");
        return -1;
    }
    return 0;
}

/* The arrays of a half-step: the CSR (indptr, indices, values or None),
 * Y read, X written, the optional biases and weights of each side, and
 * the optional Gram matrix of the whole Y side. */
enum { A_INDPTR, A_INDICES, A_VALUES, A_Y, A_X, A_XB, A_YB, A_RW, A_CW, A_GRAM, A_COUNT };
typedef struct {
    PyArrayObject *a[A_COUNT];
    npy_intp n_rows, n_cols, k;
} als_arrays;

static void als_arrays_release(als_arrays *t)
{
    for (int j = 0; j < A_COUNT; j++)
        Py_CLEAR(t->a[j]);
}

/* o: the objects in the order of the enum. -1 with an exception naming the
 * argument unless every array converts and the shapes agree. */
static int als_arrays_get(als_arrays *t, PyObject *const o[A_COUNT])
{
    PyArrayObject **a = t->a;
    if (!(a[A_INDPTR] = as_indices(o[A_INDPTR], NPY_INT64, 1, "indptr")) ||
        !(a[A_INDICES] = as_indices(o[A_INDICES], NPY_INT32, 1, "indices")) ||
        (o[A_VALUES] != Py_None &&
         !(a[A_VALUES] = as_array(o[A_VALUES], NPY_FLOAT32, 1, "values"))) ||
        !(a[A_Y] = as_array(o[A_Y], NPY_FLOAT32, 2, "Y")) ||
        !(a[A_X] = as_output(o[A_X], NPY_FLOAT32, 2, "X")))
        return -1;
    if (a[A_VALUES] && same_length(a[A_INDICES], a[A_VALUES], "indices", "values") < 0)
        return -1;
    npy_intp n_rows = PyArray_DIM(a[A_X], 0), n_cols = PyArray_DIM(a[A_Y], 0),
             k = PyArray_DIM(a[A_X], 1);
    if (PyArray_DIM(a[A_INDPTR], 0) != n_rows + 1) {
        PyErr_Format(PyExc_ValueError, "indptr must have X.shape[0] + 1 = %zd entries, got %zd",
                     (Py_ssize_t)(n_rows + 1), (Py_ssize_t)PyArray_DIM(a[A_INDPTR], 0));
        return -1;
    }
    if (PyArray_DIM(a[A_Y], 1) != k || k < 1) {
        PyErr_Format(PyExc_ValueError, "X and Y must have the same number (>= 1) of columns "
                     "(%zd != %zd)", (Py_ssize_t)k, (Py_ssize_t)PyArray_DIM(a[A_Y], 1));
        return -1;
    }
    t->n_rows = n_rows;
    t->n_cols = n_cols;
    t->k = k;
    return check_int32_size(n_rows, "X.shape[0]") < 0 ||
                   check_int32_size(n_cols, "Y.shape[0]") < 0 ||
                   check_int32_size(k, "X.shape[1]") < 0 ||
                   als_vector(o[A_XB], n_rows, 1, "x_bias", &a[A_XB]) < 0 ||
                   als_vector(o[A_YB], n_cols, 0, "y_bias", &a[A_YB]) < 0 ||
                   als_vector(o[A_RW], n_rows, 0, "row_weights", &a[A_RW]) < 0 ||
                   als_vector(o[A_CW], n_cols, 0, "col_weights", &a[A_CW]) < 0 ||
                   als_gram(o[A_GRAM], k, &a[A_GRAM]) < 0
               ? -1
               : 0;
}

/* The data pointer of an optional array. */
static void *data_or_null(PyArrayObject *a) { return a ? PyArray_DATA(a) : NULL; }

/* The half-step's result, or the exception of its status. */
static PyObject *als_result(int status, const mfr_als_stats *stats, npy_intp n_cols)
{
    switch (status) {
    case MFR_OK:
        return Py_BuildValue("{sdsdsdsdsd}", "data", stats->data, "reg", stats->reg,
                             "sse", stats->sse, "gram_seconds", stats->gram_seconds, "solve_seconds",
                             stats->solve_seconds);
    case MFR_EINDEX:
        return PyErr_Format(PyExc_IndexError,
                            "als_half_step: indices must lie in [0, Y.shape[0] = %zd)",
                            (Py_ssize_t)n_cols);
    case MFR_EINVAL:
        return raise_status_msg(status,
                                "als_half_step: invalid input: indptr must start at 0, never "
                                "decrease and end at len(indices); weights must be >= 0; and "
                                "the confidence 1 + alpha * values must be >= 0; "
                                "augmented Y's last column must be all 1");
    case MFR_ENONFINITE:
        return raise_status_msg(status, "als_half_step: values, factors and biases must be "
                                        "finite (NaN or infinity found)");
    case MFR_ENOTPD:
        return raise_status_msg(status, "als_half_step: a row's normal equations are "
                                        "singular (not positive definite): use "
                                        "regularization > 0");
    default:
        return raise_status(status, "als_half_step");
    }
}

BINDING_KW(als_half_step, "(indptr, indices, values, Y, X, *, x_bias=None, y_bias=None,\n"
"              offset=0.0, row_weights=None, col_weights=None,\n"
"              regularization=0.1, scale_regularization=False,\n"
"              unobserved_weight=0.0, alpha=0.0, binary=False,\n"
"              solver='cholesky', cg_steps=3, n_threads=1, loss=True,\n"
"              gram=None, augmented=False)",
"One weighted-least-squares half-step (csrc/core/als.c): every row i of X\n"
"(float32, n_rows x k, updated in place; the CG warm start) becomes the\n"
"minimizer of\n"
"  sum_obs c_ij (t_ij - x.y_j)^2 + w0 sum_unobs (x.y_j)^2 + lambda_i |x|^2\n"
"over row i of the CSR (indptr int64, indices int32, values float32 or\n"
"None for ones) with Y (float32, n_cols x k) fixed:\n"
"c_ij = row_weights[i] col_weights[j] (1 + alpha v_ij),\n"
"t_ij = (1[v_ij > 0] if binary else v_ij) - offset - y_bias[j],\n"
"lambda_i = regularization (times the row's count if scale_regularization),\n"
"w0 = unobserved_weight. With x_bias (written) and y_bias (read), the\n"
"unknowns are (x_i, x_bias[i]) and the features (y_j, 1); w0 must be 0.\n"
"gram (float32, k x k), used when w0 > 0: Y^T Y of the whole other side,\n"
"when Y holds only the rows the indices name (a block of a distributed\n"
"half-step); None computes it from Y.\n"
"augmented (with x_bias and y_bias): X and Y have k + 1 columns, each row\n"
"(factors, 1), the layout the kernel solves in, so that it copies neither;\n"
"X's last column is left as it is, Y's must be all 1.\n\n"
"Returns a dict: data (the rows' weighted squared errors over all\n"
"entries at their new values; 0 when loss=False), reg (sum lambda_i |x_i|^2),\n"
"sse (sum over the stored entries of (values - prediction)^2, unweighted,\n"
"the prediction offset + y_bias[j] + x_bias[i] + x.y_j rounded to float32\n"
"as predict forms it; 0 when loss=False), gram_seconds, solve_seconds.")
{
    static char *kwlist[] = {"indptr", "indices", "values", "Y", "X", "x_bias", "y_bias",
                             "offset", "row_weights", "col_weights", "regularization",
                             "scale_regularization", "unobserved_weight", "alpha", "binary",
                             "solver", "cg_steps", "n_threads", "loss", "gram", "augmented",
                             NULL};
    PyObject *o[A_COUNT] = {[A_XB] = Py_None, [A_YB] = Py_None, [A_RW] = Py_None,
                            [A_CW] = Py_None, [A_GRAM] = Py_None};
    PyObject *result = NULL;
    als_arrays t = {{0}};
    mfr_als_params p = mfr_als_default_params();
    mfr_als_stats stats = {0};
    float offset = 0.0f;
    const char *solver = "cholesky";
    int status, augmented = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOO|$OOfOOfpffpsiipOp", kwlist, &o[A_INDPTR],
                                     &o[A_INDICES], &o[A_VALUES], &o[A_Y], &o[A_X], &o[A_XB],
                                     &o[A_YB], &offset, &o[A_RW], &o[A_CW], &p.regularization,
                                     &p.scale_regularization, &p.unobserved_weight, &p.alpha,
                                     &p.binary, &solver, &p.cg_steps, &p.n_threads, &p.loss,
                                     &o[A_GRAM], &augmented))
        return NULL;
    if (als_params_check(&p, offset, solver, o[A_XB], o[A_YB]) < 0)
        return NULL;
    if (augmented && o[A_XB] == Py_None) {
        PyErr_SetString(PyExc_ValueError, "augmented needs x_bias and y_bias");
        return NULL;
    }
    /* augmented: X and Y hold k + 1 >= 2 columns (als_arrays_get: as many) */
    if (als_arrays_get(&t, o) == 0 && !(augmented && t.k < 2)) {
        PyArrayObject **a = t.a;
        mfr_csr R = {(int32_t)t.n_rows, (int32_t)t.n_cols, PyArray_DIM(a[A_INDICES], 0),
                     PyArray_DATA(a[A_INDPTR]), PyArray_DATA(a[A_INDICES]),
                     data_or_null(a[A_VALUES])};
        mfr_als_side xs = {PyArray_DATA(a[A_X]), data_or_null(a[A_XB]), data_or_null(a[A_RW]),
                           NULL, augmented};
        mfr_als_side ys = {PyArray_DATA(a[A_Y]), data_or_null(a[A_YB]), data_or_null(a[A_CW]),
                           data_or_null(a[A_GRAM]), augmented};
        const int32_t k = (int32_t)t.k - (augmented ? 1 : 0);
        Py_BEGIN_ALLOW_THREADS
        status = mfr_als_half_step(&R, k, &xs, &ys, offset, &p, &stats);
        Py_END_ALLOW_THREADS
        result = als_result(status, &stats, t.n_cols);
    }
    if (!result && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "augmented: X and Y need k + 1 >= 2 columns");
    als_arrays_release(&t);
    return result;
}

PyMethodDef mfr_py_als_functions[] = {METHOD(als_half_step), {NULL}};
