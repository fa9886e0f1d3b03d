"""The one factory for every compiled function in fastgrad.

All options live here so that every kernel is compiled the same way:
``cache=True`` (a second process loads machine code from disk instead of
compiling again), numpy's error model (a division by zero gives ``inf``, not
an exception: the checker must see it), and an explicit set of fast-math
flags. ``nnan`` and ``ninf`` are deliberately absent so that NaN and Inf still
propagate, and so are ``arcp`` and ``afn``, which would trade accuracy of
divisions and of ``exp``/``log`` for speed.

No kernel gets numba's C-callable wrapper (``no_cfunc_wrapper``: nothing
takes a kernel's address), and a helper that only compiled code calls is
compiled without its Python entry point (``entry=False``): numba lowers,
optimizes and emits both wrappers for every compiled function, and a helper
taking named tuples of arrays has a wrapper as large as its own body.
"""

import numba
from numba.core.registry import CPUDispatcher

FASTMATH_FLAGS = frozenset({"nsz", "contract", "reassoc"})


class _Helper(CPUDispatcher):
    """A compiled function without a Python entry point, for compiled callers.

    Compiled code calls it as any other compiled function. Called from
    Python (tests do), it goes through a small compiled trampoline built
    on the first such call, so that the call still works.
    """

    _entry = None

    def __call__(self, *args):
        entry = self._entry
        if entry is None:
            helper = self
            entry = self._entry = numba.njit(
                lambda *arguments: helper(*arguments), **_options(False, False)
            )
        return entry(*args)


def _options(parallel, inline, refcount=True):
    return dict(
        _nrt=refcount,
        nogil=True,
        parallel=parallel,
        error_model="numpy",
        fastmath=set(FASTMATH_FLAGS),
        inline="always" if inline else "never",
        no_cfunc_wrapper=True,
    )


def jit(*, parallel=False, cache=True, inline=False, entry=True, refcount=True):
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
    entry : bool, optional
        Give the function its Python entry point. ``False`` for a helper that
        only compiled code calls: it compiles without numba's Python wrapper
        (see :class:`_Helper` for a call from Python).
    refcount : bool, optional
        Count references to arrays (numba's runtime, NRT). ``False`` for a
        helper called per unit and sample that neither allocates nor returns
        an array and calls only helpers of the same kind: every array it
        binds would otherwise cost an atomic increment and decrement per
        call, which took about half of the kernel's time on small networks.
        Its arrays stay alive in the caller, which counts them.

    Returns
    -------
    decorator
        ``numba.njit`` configured with ``cache=True``, ``nogil=True``,
        numpy's error model and :data:`FASTMATH_FLAGS`.
    """
    options = _options(parallel, inline, refcount)
    # NUMBA_DISABLE_JIT=1: every function stays plain Python, helpers included
    if entry or numba.config.DISABLE_JIT:
        return numba.njit(cache=cache, **options)

    def decorate(function):
        helper = _Helper(
            py_func=function,
            locals={},
            targetoptions=dict(nopython=True, no_cpython_wrapper=True, **options),
        )
        if cache:
            helper.enable_caching()
        return helper

    return decorate


try:  # numba's own key of an argument's type (the one its dispatcher caches types by)
    from numba._dispatcher import compute_fingerprint as _fingerprint
except ImportError:  # pragma: no cover - another numba: every call through its dispatcher
    _fingerprint = None


class DirectCall:
    """Call a compiled function's machine code without numba's per-call type dispatch.

    numba's dispatcher keys the compiled overload of a call by a fingerprint
    of its arguments' types, computed in C; for a named tuple of arrays it
    costs about 0.3 us per array (3.4 us for a :class:`Network`), against
    0.03 us for an array in a plain tuple. This wrapper keys the overload by
    the arguments' classes and numba's fingerprint of one plain tuple of
    their values, the named tuples' arrays laid out in it (a named tuple's
    class fixes its length and field names; its arrays' dtype, dimensions,
    layout and writability are in the fingerprint). It learns the overload
    from the dispatcher on the first call with those types and then calls
    its entry point directly. Arguments of types not seen before, values
    numba cannot fingerprint, and ``NUMBA_DISABLE_JIT=1`` go through the
    dispatcher, which compiles or raises as it always does.

    Parameters
    ----------
    dispatcher : numba dispatcher
        A function compiled with a Python entry point (not a ``jit(entry=False)`` helper).
    """

    __slots__ = ("dispatcher", "_entries")

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher
        self._entries = {}

    def __call__(self, *args):
        if _fingerprint is None:
            return self.dispatcher(*args)
        values = []
        for arg in args:
            if isinstance(arg, tuple) and type(arg) is not tuple:
                values.extend(arg)  # a named tuple: its class (in the key) fixes its length
            else:
                values.append(arg)
        try:
            key = (tuple(map(type, args)), _fingerprint(tuple(values)))
        except Exception:  # a value numba types another way: the dispatcher decides
            return self.dispatcher(*args)
        entry = self._entries.get(key)
        if entry is not None:
            return entry(*args)
        result = self.dispatcher(*args)
        self._learn(key, args)
        return result

    def _learn(self, key, args):
        """Keep the entry point of the overload compiled for exactly these argument types."""
        overloads = getattr(self.dispatcher, "overloads", None)
        if overloads is None:  # a plain Python function (NUMBA_DISABLE_JIT=1)
            return
        signature = tuple(self.dispatcher.typeof_pyval(a) for a in args)
        compiled = overloads.get(signature)
        if compiled is not None and not compiled.objectmode:
            self._entries[key] = compiled.entry_point


_DIRECT = {}


def direct(dispatcher):
    """Return the :class:`DirectCall` of ``dispatcher`` (one per compiled function)."""
    found = _DIRECT.get(dispatcher)
    if found is None:
        found = _DIRECT[dispatcher] = DirectCall(dispatcher)
    return found
