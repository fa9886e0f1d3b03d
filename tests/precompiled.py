"""Small cached functions for the tests of fastgrad._precompile, each compiled in a child.

Defined here rather than in the test module so that a child process imports
them without pytest: the tests put this folder on the child's path.
"""

import numba


@numba.njit(cache=True)
def twice(x):
    return 2.0 * x


@numba.njit(cache=True)
def thrice(x):
    return 3.0 * x


@numba.njit(cache=True)
def fails(x):
    return x.no_such_attribute  # a typing error: the child exits with an error
