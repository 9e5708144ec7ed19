/*
 * convert.c - the helpers every binding file uses: status codes to
 * exceptions, arguments to arrays the core can read or write, and CSR
 * tuples checked in full.
 */
#include "binding.h"

/* The exception type for a core status. numpy.linalg.LinAlgError (a
 * ValueError) for a matrix that is not positive definite: callers catch
 * it by type, as they would from numpy.linalg. A new reference. */
static PyObject *status_type(int status)
{
    PyObject *type;
    switch (status) {
    case MFR_ENOMEM: type = PyExc_MemoryError; break;
    case MFR_EDIVERGED: /* fall through */
    case MFR_ERANGE: type = PyExc_FloatingPointError; break;
    case MFR_EINDEX: type = PyExc_IndexError; break;
    case MFR_ELAPACK: type = PyExc_RuntimeError; break;
    case MFR_ENOTPD: {
        PyObject *linalg = PyImport_ImportModule("numpy.linalg");
        type = linalg ? PyObject_GetAttrString(linalg, "LinAlgError") : NULL;
        Py_XDECREF(linalg);
        if (type)
            return type;
        PyErr_Clear(); /* numpy.linalg is part of numpy: not expected */
        type = PyExc_ValueError;
        break;
    }
    default: type = PyExc_ValueError; break;
    }
    Py_INCREF(type);
    return type;
}

PyObject *raise_status_msg(int status, const char *message)
{
    PyObject *type = status_type(status);
    PyErr_SetString(type, message);
    Py_DECREF(type);
    return NULL;
}

PyObject *raise_status(int status, const char *what)
{
    PyObject *type = status_type(status);
    PyErr_Format(type, "%s: %s", what, mfr_strerror(status));
    Py_DECREF(type);
    return NULL;
}

void conversion_error(const char *name, int typenum)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_Format(PyExc_TypeError, "%s: expected an array convertible to %s (%S)", name,
                 typenum == NPY_INT32 ? "int32" : typenum == NPY_INT64 ? "int64" :
                 typenum == NPY_FLOAT32 ? "float32" :
                 typenum == NPY_FLOAT64 ? "float64" : "the required dtype",
                 value ? value : Py_None);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

static PyArrayObject *array_from(PyObject *obj, int typenum, int ndim, const char *name,
                                 int flags)
{
    PyArrayObject *arr = (PyArrayObject *)PyArray_FROM_OTF(obj, typenum, flags);
    if (!arr) {
        conversion_error(name, typenum);
        return NULL;
    }
    if (PyArray_NDIM(arr) != ndim) {
        PyErr_Format(PyExc_ValueError, "%s: expected a %d-D array, got %d-D", name,
                     ndim, PyArray_NDIM(arr));
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

PyArrayObject *as_array(PyObject *obj, int typenum, int ndim, const char *name)
{
    return array_from(obj, typenum, ndim, name, NPY_ARRAY_IN_ARRAY);
}

/* A sealed array's data belong to an owning array that only a capsule
 * (its base) holds. NumPy refuses `flags.writeable = True` on it (the base
 * chain ends in an object that exports no writable buffer), so no thread
 * can change it while the GIL is released around a kernel that checked it;
 * only the binding's kernels write through the data pointer (the training
 * steps, on private core models). */
#define SEALED_NAME "mfrec._core.sealed"

static void sealed_free(PyObject *capsule)
{
    Py_XDECREF((PyObject *)PyCapsule_GetPointer(capsule, SEALED_NAME));
}

PyArrayObject *sealed(PyArrayObject *owner)
{
    PyObject *holder = PyCapsule_New(owner, SEALED_NAME, sealed_free);
    if (!holder) {
        Py_DECREF(owner);
        return NULL;
    }
    PyArray_Descr *descr = PyArray_DESCR(owner);
    Py_INCREF(descr);
    PyArrayObject *arr = (PyArrayObject *)PyArray_NewFromDescr(
        &PyArray_Type, descr, PyArray_NDIM(owner), PyArray_DIMS(owner), NULL,
        PyArray_DATA(owner), NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED, NULL);
    if (!arr) {
        Py_DECREF(holder);
        return NULL;
    }
    if (PyArray_SetBaseObject(arr, holder) < 0) { /* steals holder */
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

/* Whether obj is a sealed array (or a view of one) as the core reads it. */
static int is_sealed(PyObject *obj, int typenum, int ndim)
{
    if (!PyArray_Check(obj))
        return 0;
    PyArrayObject *a = (PyArrayObject *)obj;
    PyObject *base = PyArray_BASE(a);
    return base && PyCapsule_IsValid(base, SEALED_NAME) && PyArray_TYPE(a) == typenum &&
           PyArray_NDIM(a) == ndim && PyArray_ISCARRAY_RO(a) && PyArray_ISNOTSWAPPED(a);
}

PyArrayObject *as_indices(PyObject *obj, int typenum, int ndim, const char *name)
{
    if (is_sealed(obj, typenum, ndim)) { /* no thread can change it: no copy */
        Py_INCREF(obj);
        return (PyArrayObject *)obj;
    }
    return array_from(obj, typenum, ndim, name, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_ENSURECOPY);
}

PyArrayObject *as_output(PyObject *obj, int typenum, int ndim, const char *name)
{
    if (!PyArray_Check(obj) || PyArray_TYPE((PyArrayObject *)obj) != typenum ||
        PyArray_NDIM((PyArrayObject *)obj) != ndim ||
        !PyArray_ISCARRAY((PyArrayObject *)obj)) {
        PyErr_Format(PyExc_TypeError,
                     "%s: expected a writeable C-contiguous %d-D array of %s", name,
                     ndim, typenum == NPY_FLOAT32 ? "float32" : "the required dtype");
        return NULL;
    }
    Py_INCREF(obj);
    return (PyArrayObject *)obj;
}

npy_intp same_length(PyArrayObject *a, PyArrayObject *b, const char *na, const char *nb)
{
    if (PyArray_DIM(a, 0) != PyArray_DIM(b, 0)) {
        PyErr_Format(PyExc_ValueError, "%s and %s must have the same length (%zd != %zd)",
                     na, nb, (Py_ssize_t)PyArray_DIM(a, 0), (Py_ssize_t)PyArray_DIM(b, 0));
        return -1;
    }
    return PyArray_DIM(a, 0);
}

int check_int32_size(Py_ssize_t n, const char *name)
{
    if (n < 0 || n > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s must be in [0, 2**31 - 1], got %zd", name, n);
        return -1;
    }
    return 0;
}

void csr_view_release(csr_view *v)
{
    for (int j = 0; j < 3; j++)
        Py_CLEAR(v->held[j]);
}

int csr_view_get(csr_view *v, PyObject *obj, Py_ssize_t n_cols, const char *name)
{
    return csr_view_get_values(v, obj, n_cols, name, 0);
}

int csr_view_get_values(csr_view *v, PyObject *obj, Py_ssize_t n_cols, const char *name,
                        int optional)
{
    static const char *parts[3] = {"indptr", "indices", "values"};
    static const int types[3] = {NPY_INT64, NPY_INT32, NPY_FLOAT32};
    char label[64];
    memset(v, 0, sizeof *v);
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != 3) {
        /* tp_name, not %T: %T needs Python 3.13 */
        PyErr_Format(PyExc_TypeError, "%s: expected a tuple (indptr, indices, values), got %s",
                     name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    for (int j = 0; j < 3; j++) {
        snprintf(label, sizeof label, "%s %s", name, parts[j]);
        if (j == 2 && optional && PyTuple_GET_ITEM(obj, j) == Py_None)
            break; /* ones */
        if (!(v->held[j] = (j < 2 ? as_indices : as_array)(PyTuple_GET_ITEM(obj, j), types[j],
                                                             1, label)))
            return -1;
    }
    npy_intp n_rows = PyArray_DIM(v->held[0], 0) - 1; /* -1 for an empty indptr */
    if (check_int32_size(n_rows, "the number of rows") < 0 ||
        check_int32_size(n_cols, "the number of columns") < 0)
        return -1;
    if (v->held[2] && PyArray_DIM(v->held[1], 0) != PyArray_DIM(v->held[2], 0)) {
        PyErr_Format(PyExc_ValueError, "%s: indices and values must have the same length",
                     name);
        return -1;
    }
    v->csr = (mfr_csr){(int32_t)n_rows, (int32_t)n_cols, PyArray_DIM(v->held[1], 0),
                       PyArray_DATA(v->held[0]), PyArray_DATA(v->held[1]),
                       v->held[2] ? PyArray_DATA(v->held[2]) : NULL};
    int status = mfr_csr_check(&v->csr);
    if (status != MFR_OK) {
        PyErr_Format(PyExc_ValueError, "%s: not a valid CSR matrix with %zd columns (%s)", name,
                     n_cols, mfr_strerror(status));
        return -1;
    }
    return 0;
}

int csr_view_get_by_user(csr_view *v, PyObject *obj, const mfr_model *m, const char *name)
{
    if (csr_view_get(v, obj, m->n_items, name) < 0)
        return -1;
    if (v->csr.n_rows != m->n_users) {
        PyErr_Format(PyExc_ValueError, "%s: %d rows for a model of %d users", name,
                     (int)v->csr.n_rows, (int)m->n_users);
        return -1;
    }
    return 0;
}

int csr_views_transposed(const csr_view *by_row, const csr_view *by_col, const char *row_name,
                         const char *col_name)
{
    if (mfr_csr_check_transpose(&by_row->csr, &by_col->csr) != MFR_OK) {
        PyErr_Format(PyExc_ValueError, "%s must hold the entries of %s, transposed", col_name,
                     row_name);
        return -1;
    }
    return 0;
}
