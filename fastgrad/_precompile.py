"""Compile a kernel in a second process while this one compiles the others.

numba compiles on one thread, and a first-ever check compiles for many
seconds, about half of it the finite-difference kernel's call tree (the
other half the passes, the tables, the line setup and the comparison). On
a machine of two or more cores :func:`start` hands that kernel to a child
process (``sys.executable``, the same fastgrad, the same environment) as
soon as the command starts; this process compiles the rest as the check
reaches it, and :func:`wait_for`, called just before the kernel's first
call, waits for the child and takes its machine code into numba's cache,
where the kernel's dispatcher then finds it as it would after any earlier
run.

The child writes to a cache directory of its own (``NUMBA_CACHE_DIR`` set to
a new temporary folder): two processes compiling different signatures of
one function into the same cache at once could number their data files
alike. Only this process writes the real cache, through numba's own index
(:class:`numba.core.caching.IndexDataCacheFile`), wherever numba locates it
for the kernel (``NUMBA_CACHE_DIR``, the package's ``__pycache__``, or the
user-wide cache numba falls back to when the package is read-only).

Anything that goes wrong only costs time: a child that fails, is killed or
leaves nothing usable (another source, another numba) leaves the kernel
uncached, and this process compiles it itself, the same code. The child
says it is done on its stdout (a pipe) and then stays until this process
takes its code and stops it, or is gone: the end of its stdin (a pipe no one
writes) tells it so whatever ended this process, a kill included, and the
child then removes its folder and exits, even in the middle of its compile.

Nothing is started when the kernel is already cached (one read of the index of its
signatures), when fewer than two cores are usable, or when the environment
variable ``FASTGRAD_COMPILE_AHEAD`` is ``0``.
"""

import atexit
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time

CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from fastgrad import _precompile
_precompile.child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
"""

DONE = b"1"
"""What the child writes on its stdout once the kernel is compiled into its cache."""

SWITCH = "FASTGRAD_COMPILE_AHEAD"
"""Environment variable: ``0`` compiles everything in this process, as with one core."""

TIMEOUT = 600.0
"""Seconds to wait for a child before compiling here instead (it compiles in about ten)."""

_pending = {}
_lock = threading.Lock()


def usable_cores():
    """Return the cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _index(dispatcher, signature):
    """Return ``(cache file, key)`` of ``signature`` in ``dispatcher``'s disk cache, or None."""
    cache = getattr(dispatcher, "_cache", None)
    cache_file = getattr(cache, "_cache_file", None)
    if cache_file is None or not getattr(cache, "_enabled", False):
        return None
    return cache_file, cache._index_key(signature, dispatcher.targetctx.codegen())


def is_cached(dispatcher, signature):
    """Whether ``dispatcher`` has ``signature`` compiled, in memory or in its disk cache.

    Also true when it cannot be told (no disk cache): nothing is then worth
    compiling ahead.
    """
    if tuple(signature) in getattr(dispatcher, "overloads", {}):
        return True
    found = _index(dispatcher, signature)
    if found is None:
        return True
    cache_file, key = found
    return key in cache_file._load_index()


class Child:
    """A child process compiling one signature of one kernel into its own cache folder."""

    def __init__(self, dispatcher, signature):
        self.dispatcher = dispatcher
        self.signature = tuple(signature)
        self.folder = tempfile.mkdtemp(prefix="fastgrad-compile-")
        self.waited = 0.0
        self.merged = False
        function = dispatcher.py_func
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        target = f"{function.__module__}:{function.__qualname__}"
        with open(os.path.join(self.folder, "signature.pickle"), "wb") as out:
            pickle.dump(self.signature, out)
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(self.folder, "cache"))
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", CHILD, root, target, self.folder, str(os.getpid())],
                env=env,
                # stdin: a pipe never written, that ends with this process; stdout: its word
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                # a session of its own: where the scheduler shares a busy machine per session
                # (Linux's autogroups), the child gets a share beside this process's instead
                # of half of it. Ctrl-C at the terminal then reaches this process only,
                # which stops the child (finish, stop_all, atexit)
                start_new_session=True,
            )
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    def finish(self, timeout=TIMEOUT):
        """Wait for the child, then copy its machine code into the kernel's cache.

        Returns whether the kernel's cache now holds the signature. Stops the
        child first when it runs past ``timeout`` seconds or on any exception
        (Ctrl-C among them).
        """
        started = time.perf_counter()
        try:
            done = self._compiled(timeout)
            self.waited += time.perf_counter() - started
            if done:
                try:
                    self.merged = self._merge()
                except Exception:  # noqa: BLE001 - an unreadable or unwritable cache: compile here
                    self.merged = False
        finally:
            self.clean()
        return self.merged

    def _compiled(self, timeout):
        """Wait up to ``timeout`` seconds for the child's word that it compiled; return whether."""
        word = []
        reader = threading.Thread(target=lambda: word.append(self.process.stdout.read(1)))
        reader.daemon = True  # a child past its time: killed next, which ends the read
        reader.start()
        reader.join(timeout)
        return word == [DONE]

    def _merge(self):
        """Copy the child's entry for the signature into the kernel's cache; return whether done."""
        found = _index(self.dispatcher, self.signature)
        if found is None:
            return False
        cache_file, key = found
        from numba.core.caching import IndexDataCacheFile

        name = cache_file._index_name.removesuffix(".nbi")
        for folder, _, files in os.walk(os.path.join(self.folder, "cache")):
            if cache_file._index_name in files:
                # the parent's source stamp: an index written from other source reads as empty
                theirs = IndexDataCacheFile(folder, name, cache_file._source_stamp)
                data_name = theirs._load_index().get(key)
                if data_name is not None:
                    cache_file.save(key, theirs._load_data(data_name))
                    return True
        return False

    def stop(self):
        """Kill the child if it still runs, and close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()

    def clean(self):
        """Stop the child and remove its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def start(dispatcher, signature):
    """Compile ``signature`` of ``dispatcher`` in a child process, if that will save time.

    Parameters
    ----------
    dispatcher : numba dispatcher
        A kernel compiled with ``cache=True``.
    signature : tuple of numba types
        The argument types of the call to come.

    Returns
    -------
    Child or None
        The child, also registered for :func:`wait_for`; None when the
        signature is cached already, fewer than two cores are usable, the
        child cannot be started, or :data:`SWITCH` is ``0``.
    """
    if os.environ.get(SWITCH, "1") == "0":
        return None
    # no sys.executable: an embedded Python, with no interpreter to start
    if not sys.executable or usable_cores() < 2:
        return None
    try:
        if is_cached(dispatcher, signature):
            return None
    except Exception:  # noqa: BLE001 - numba's cache read another way (another version): skip
        return None
    with _lock:
        if dispatcher in _pending:
            return _pending[dispatcher]
        try:
            child = Child(dispatcher, signature)
        except OSError:
            return None
        _pending[dispatcher] = child
        return child


def wait_for(dispatcher):
    """Before a call of ``dispatcher``: wait for its child compile, if one runs.

    Costs a dictionary lookup when none does.
    """
    if not _pending:
        return
    with _lock:
        child = _pending.get(dispatcher)
    if child is not None:
        # registered until done: a second Ctrl-C that stops the cleaning halfway
        # leaves the child to stop_all
        child.finish()
        with _lock:
            _pending.pop(dispatcher, None)


def stop_all():
    """Stop every child still running and remove its folder (what was compiled is lost)."""
    with _lock:
        children = list(_pending.values())
        _pending.clear()
    for child in children:
        child.clean()


atexit.register(stop_all)


def child(target, folder, parent):
    """Compile ``target`` (``module:qualname``) for the signature pickled in ``folder``.

    The child's work. It says :data:`DONE` on its stdout once compiled, then
    waits to be stopped. When the ``parent`` process is gone (its stdin has
    ended, or its parent is another by the end of the compile), the child
    removes ``folder`` and exits at once, compiling or not.
    """
    import importlib

    # the pipe to the parent carries the one word; whatever else is printed goes nowhere
    report = os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)

    def orphaned():
        sys.stdin.buffer.read()  # the parent's end closes with the parent, however it ended
        me = os.getpid()
        # the folder is removed once this process is gone: its compile may still be writing
        # there. A fork holds this thread alone and waits for that
        if hasattr(os, "fork") and os.fork() == 0:
            while os.getppid() == me:
                time.sleep(0.01)
        shutil.rmtree(folder, ignore_errors=True)
        os._exit(0)

    watch = threading.Thread(target=orphaned, daemon=True)
    watch.start()
    module_name, name = target.split(":")
    dispatcher = importlib.import_module(module_name)
    for part in name.split("."):
        dispatcher = getattr(dispatcher, part)
    with open(os.path.join(folder, "signature.pickle"), "rb") as source:
        signature = pickle.load(source)
    try:
        dispatcher.compile(signature)
        os.write(report, DONE)
    finally:
        if os.getppid() != parent:
            shutil.rmtree(folder, ignore_errors=True)
    watch.join()
