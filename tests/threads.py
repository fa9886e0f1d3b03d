"""Numba's thread count for the length of a test block."""

import contextlib

import numba


@contextlib.contextmanager
def numba_threads(count):
    """Run the body on ``count`` of numba's threads, restoring the count after."""
    before = numba.get_num_threads()
    numba.set_num_threads(count)
    try:
        yield
    finally:
        numba.set_num_threads(before)
