"""The one factory for every compiled function in fastgrad.

All options live here so that every kernel is compiled the same way:
``cache=True`` (a second process loads machine code from disk instead of
compiling again), numpy's error model (a division by zero gives ``inf``, not
an exception: the checker must see it), and an explicit set of fast-math
flags. ``nnan`` and ``ninf`` are deliberately absent so that NaN and Inf still
propagate, and so are ``arcp`` and ``afn``, which would trade accuracy of
divisions and of ``exp``/``log`` for speed.
"""

import numba

FASTMATH_FLAGS = frozenset({"nsz", "contract", "reassoc"})


def jit(*, parallel=False, cache=True, inline=False):
    """Return the ``numba.njit`` decorator every fastgrad kernel uses.

    Parameters
    ----------
    parallel : bool, optional
        Compile ``prange`` loops as parallel loops.
    cache : bool, optional
        Cache machine code on disk. Only a kernel that takes a user's
        function as an argument turns this off: such a kernel cannot be cached.
    inline : bool, optional
        Inline the function into its callers in numba's IR instead of
        compiling it as a function of its own. A compiled function is
        optimized and emitted again inside each compiled caller, so a large
        function with one small caller compiles faster inlined. Measure
        before using it more: inlining every one-caller helper of the
        finite-difference kernel made its first compile longer, not shorter.

    Returns
    -------
    decorator
        ``numba.njit`` configured with ``cache=True``, ``nogil=True``,
        numpy's error model and :data:`FASTMATH_FLAGS`.
    """
    return numba.njit(
        cache=cache,
        nogil=True,
        parallel=parallel,
        error_model="numpy",
        fastmath=set(FASTMATH_FLAGS),
        inline="always" if inline else "never",
    )
