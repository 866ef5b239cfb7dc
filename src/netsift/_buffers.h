/*
 * _buffers.h: the buffer-protocol helper the C extensions share.
 *
 * get_buffer() exports a C-contiguous view of a numpy array (or any buffer)
 * and checks its item size; on any failure a Python exception is set, the view
 * is not held and -1 is returned.  ``what`` names the argument in the message.
 */
#ifndef NETSIFT_BUFFERS_H
#define NETSIFT_BUFFERS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

static int get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->itemsize != itemsize) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "%s has the wrong item size", what);
        return -1;
    }
    return 0;
}

#endif
