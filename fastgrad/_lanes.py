"""Run the lanes of a compiled kernel on threads.

A kernel that takes ``(lane, lanes, ...)`` and releases the GIL runs its
lanes here: lane 0 on the calling thread, the others on a pool of threads
kept for the life of the process. One compiled function thus serves any
number of threads, instead of a ``prange`` build (numba's parallel lowering
optimizes and emits the kernel's whole call tree once per wrapper level,
most of a first-ever check's compile) beside a serial build of the same
code.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

_pool = None
_pool_size = 0
_pool_pid = None
_pool_lock = threading.Lock()


def _forked():
    """In a forked child: no pool, and a lock of its own (a parent's thread may have held it)."""
    global _pool, _pool_size, _pool_pid, _pool_lock
    _pool, _pool_size, _pool_pid = None, 0, None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def _executor(workers):
    """Return the shared pool, grown to at least ``workers`` threads.

    A process forked after the pool started has none of its threads, so it
    starts its own pool (the inherited one would never run a task). A pool
    grown is replaced, not shut down: a call on another thread may have taken
    the old one and not yet handed it its lanes; the old pool's threads end
    once no call holds it.
    """
    global _pool, _pool_size, _pool_pid
    with _pool_lock:
        if _pool_pid != os.getpid():
            _pool, _pool_size = None, 0
        if _pool_size < workers:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fastgrad-lane")
            _pool_size = workers
            _pool_pid = os.getpid()
        return _pool


def run_lanes(kernel, lanes, *args):
    """Call ``kernel(lane, lanes, *args)`` for ``lane = 0 .. lanes - 1`` at once.

    Returns when every lane has returned, so that no lane writes into the
    outputs after this call, even when Ctrl-C interrupts the wait (the
    ``KeyboardInterrupt`` is raised once the lanes are done); an exception of
    any lane is raised here.

    Parameters
    ----------
    kernel : numba dispatcher
        Compiled with ``nogil=True``, so that its lanes run in parallel.
    lanes : int
        Number of lanes (threads), at least 1.
    *args
        The kernel's other arguments.
    """
    if lanes <= 1:
        kernel(0, 1, *args)
        return
    pool = _executor(lanes - 1)
    futures = []
    try:
        for lane in range(1, lanes):
            futures.append(pool.submit(kernel, lane, lanes, *args))
        kernel(0, lanes, *args)
    finally:
        _wait_all(futures)  # every lane, even when one has failed: none may still be writing
    for future in futures:
        future.result()  # raises a lane's exception


def _wait_all(futures):
    """Wait for every future, even through Ctrl-C; an exception raised while waiting follows.

    A signal's handler (Ctrl-C's ``KeyboardInterrupt``) raises in the waiting
    thread while the other lanes still run: returning then would leave them
    writing into arrays the caller reads or reuses.
    """
    raised = None
    while True:
        try:
            wait(futures)
            break
        except BaseException as error:  # raised by a signal's handler: wait on, raise after
            raised = raised or error
    if raised is not None:
        raise raised
