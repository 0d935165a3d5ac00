# Array helpers of the env-step fast paths (vector_step.pyx, single_step.pyx): fresh copies of the
# state arrays a step hands out, and the check that an array they keep a raw pointer into is one.

cimport numpy as cnp
from libc.string cimport memcpy


cdef inline object fresh_copy(cnp.ndarray src):
    """A fresh C-ordered copy of a C-contiguous array (what ``src.copy()`` returns)."""
    cdef cnp.ndarray out = cnp.PyArray_SimpleNew(cnp.PyArray_NDIM(src), cnp.PyArray_DIMS(src),
                                                  cnp.PyArray_TYPE(src))
    memcpy(cnp.PyArray_DATA(out), cnp.PyArray_DATA(src), cnp.PyArray_NBYTES(src))
    return out


cdef inline cnp.ndarray contiguous(value, dtype, shape, str owner):
    """``value`` itself, checked to be a C-contiguous native ndarray of that dtype and shape (None:
    any); ``owner`` names the class that needs it in the error."""
    if type(value) is not cnp.ndarray or not value.flags.c_contiguous or not value.dtype.isnative \
            or (dtype is not None and value.dtype != dtype) or (shape is not None and value.shape != shape):
        raise ValueError(f"{owner} needs C-contiguous native state arrays")
    return <cnp.ndarray>value
