"""Centered differences on a Dask cluster (``fastgrad[dask]``).

The parameter loop of a full or sampled check is a list of independent
(layer, unit) tasks (:class:`fastgrad.numerical.Differences`). Here it runs
on the workers of a ``dask.distributed.Client``, the way STUMPY's ``stumped``
spreads its matrix profile:

1. the network after its forward pass (parameters, batch, activations) is
   scattered once to every worker;
2. the tasks are cut into contiguous ranges of similar estimated cost, eight
   per worker thread, and submitted largest first;
3. each worker builds the kernel's tables once, then runs its ranges in the
   same compiled kernel as a local check, on as many numba threads as it
   has Dask threads, one range at a time;
4. the results are written back at their own entries as ranges finish.

Each entry is summed over the batch in sample order inside its own task, so
where a task runs, and with how many threads, does not change a bit of the
result: the report is the local one. A lost worker's ranges are run again
by Dask (results are only read from finished futures, so nothing is counted
twice).

Nothing here imports dask until a client is used.
"""

import contextlib
import logging
import threading
import uuid

import numba
import numpy as np

from .check import threads_limited
from .kernels.structures import Results
from .numerical import Differences, split_tasks

INSTALL_HINT = 'pip install "fastgrad[dask]"'

RANGES_PER_THREAD = 8
"""Ranges per worker thread of the cluster (fewer when there are fewer tasks).

A check worth a cluster lasts minutes, so a range lasts seconds and Dask's
few milliseconds per task do not count; eight per thread let the threads that
finish early take over the ranges of the others (the cost estimate that
splits them is rough), keep the progress moving and bound what a lost worker
costs.
"""

_KERNEL_LOCK = threading.Lock()
"""One kernel call at a time in a worker process: it already uses all the worker's threads."""


def import_distributed():
    """Return the ``distributed`` module, or raise an ImportError naming the extra to install."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"running on a Dask cluster needs dask.distributed: {INSTALL_HINT}"
        ) from exc
    return distributed


def check_client(client):
    """Return the ``distributed`` module; raise unless ``client`` is a Dask ``Client``."""
    distributed = import_distributed()
    if not isinstance(client, distributed.Client):
        raise TypeError(f"client must be a dask.distributed.Client; got {type(client).__name__}")
    return distributed


@contextlib.contextmanager
def connect(scheduler=None, workers=None, timeout=10):
    """Yield a client of a running scheduler, or of a LocalCluster started for the block.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler, ``tcp://host:8786``.
    workers : int, optional
        Without ``scheduler``: start a ``LocalCluster`` of this many
        single-threaded worker processes, closed when the block ends.
    timeout : float, default 10
        Seconds to wait for the scheduler.

    Raises
    ------
    ImportError
        When dask.distributed is not installed.
    ValueError
        When the scheduler cannot be reached.
    """
    distributed = import_distributed()
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.ERROR)  # the command's output is the report, not Dask's log
    cluster = None
    try:
        if scheduler is not None:
            try:
                client = distributed.Client(scheduler, timeout=timeout)
            except OSError as exc:
                raise ValueError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
        else:
            cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
            client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
        logger.setLevel(level)


class Shipment:
    """What is scattered to the workers: a workspace, a step and the entries to difference.

    On a worker it becomes a :class:`Differences`, whose tables are built by
    the first range that runs there and kept for the next ones. Only the
    inputs travel, never the tables: a worker that receives the shipment
    from another builds its own.
    """

    def __init__(self, work, epsilon, entries, method="exact"):
        self.work = work
        self.epsilon = epsilon
        self.entries = entries
        self.method = method
        self._differences = None

    def __getstate__(self):
        return {
            "work": self.work,
            "epsilon": self.epsilon,
            "entries": self.entries,
            "method": self.method,
        }

    def __setstate__(self, state):
        work = state["work"]
        for name, value in vars(work).items():
            # an array received over the network may sit in a read-only or unaligned buffer;
            # numba compiles another specialization of the kernel for those, which need
            # not round like the local one (and takes a minute to compile)
            if isinstance(value, np.ndarray) and not (
                value.flags.aligned and value.flags.writeable
            ):
                setattr(work, name, np.require(value, requirements=["A", "W"]))
        self.__init__(work, state["epsilon"], state["entries"], state["method"])

    @property
    def differences(self):
        """The :class:`Differences` of this shipment, built on first use."""
        if self._differences is None:
            self._differences = Differences(self.work, self.epsilon, self.entries, self.method)
        return self._differences


def task_range(differences, t_start, t_stop):
    """Return a :class:`Differences` over tasks ``t_start:t_stop`` alone, entries counted from 0.

    It shares the tables of ``differences``; each task's arithmetic is the
    same, only the indices of its entries in the output arrays shift.
    """
    part = object.__new__(Differences)
    part.__dict__.update(differences.__dict__)
    e_start = int(differences.entry_ptr[t_start])
    e_stop = int(differences.entry_ptr[t_stop])
    part.task_layer = differences.task_layer[t_start:t_stop]
    part.task_unit = differences.task_unit[t_start:t_stop]
    part.entry_ptr = differences.entry_ptr[t_start : t_stop + 1] - e_start
    # read-only like the full layout's arrays: numba types read-only arrays apart, and the
    # kernel must be the very specialization a local check runs
    part.entry_ptr.flags.writeable = differences.entry_ptr.flags.writeable
    part.entry_input = differences.entry_input[e_start:e_stop]
    part.entries = differences.entries[e_start:e_stop]
    part.is_weight = differences.is_weight[e_start:e_stop]
    if not differences.full:  # a full check's part carries every unit of a layer it reaches
        part.layers_in_series = set()  # the series of its own tasks' units
    return part


def worker_threads():
    """Return the number of threads of the Dask worker running the current task."""
    from distributed import get_worker

    worker = get_worker()
    state = getattr(worker, "state", worker)
    return int(state.nthreads)


def run_range(shipment, t_start, t_stop):
    """Run tasks ``t_start:t_stop`` on a worker; return their :class:`Results` as a tuple.

    This is the function each Dask task calls. It uses as many numba threads
    as the worker has threads and restores the count afterwards.
    """
    threads = min(worker_threads(), numba.config.NUMBA_NUM_THREADS)
    with _KERNEL_LOCK, threads_limited(threads):
        differences = shipment.differences
        differences.prepare()
        part = task_range(differences, t_start, t_stop)
        out = part.new_results()
        part.run(0, t_stop - t_start, out)
    return tuple(out)


def plan_ranges(costs, threads):
    """Cut tasks of estimated ``costs`` into ranges for a cluster of ``threads`` threads in all.

    Returns
    -------
    list of (int, int)
        :data:`RANGES_PER_THREAD` per thread (at most one per task)
        contiguous ``(t_start, t_stop)`` ranges of similar estimated cost
        covering every task, largest first.
    """
    ranges = split_tasks(costs, RANGES_PER_THREAD * threads)
    cumulative = np.r_[0.0, np.cumsum(costs)]
    weight = [cumulative[stop] - cumulative[start] for start, stop in ranges]
    order = sorted(range(len(ranges)), key=lambda r: (-weight[r], ranges[r][0]))
    return [ranges[r] for r in order]


def compute(
    client, work, epsilon, entries=None, progress=None, interruptible=False, method="exact"
):
    """Run the centered differences of a check on the workers of ``client``.

    Parameters
    ----------
    client : dask.distributed.Client
        A client connected to the cluster.
    work : Workspace
        The network, parameters and batch after the forward pass.
    epsilon : float
        Step.
    entries : ndarray of int, optional
        Flat indices of the entries to difference; all when omitted.
    progress : callable, optional
        Called as ``progress(done, total)`` in entries each time a range finishes.
    interruptible : bool
        Turn ``KeyboardInterrupt`` into a partial result: the outstanding
        ranges are cancelled and the finished ones kept.
    method : {"exact", "direct"}, default "exact"
        The kernel's method (see :class:`Differences`).

    Returns
    -------
    differences : Differences
        The layout of the entries (``differences.entries`` orders the values).
    values : ndarray
        The gradient entries, in the order of ``differences.entries``.
    kinks : ndarray of int
        Kink crossings per entry.
    computed : ndarray of bool
        Which entries were computed (all unless interrupted).
    info : dict
        ``workers``, ``threads`` (their sum) and ``ranges``.

    Raises
    ------
    ImportError
        When dask.distributed is not installed.
    TypeError
        When ``client`` is not a ``dask.distributed.Client``.
    ValueError
        When the cluster has no workers.
    """
    distributed = check_client(client)
    differences = Differences(work, epsilon, entries, method)
    threads = client.nthreads()
    if not threads:
        raise ValueError("client: the Dask cluster has no workers")
    ranges = plan_ranges(differences.task_costs(), sum(threads.values()))
    total = differences.entries.size
    out = differences.new_results()
    computed = np.zeros(total, dtype=bool)
    token = uuid.uuid4().hex
    shipment = None
    pending = {}
    done = 0
    try:  # Ctrl-C while scattering or submitting also returns what is done: nothing
        shipment = client.scatter(
            Shipment(work, epsilon, entries, method), broadcast=True, hash=False
        )
        for rank, (t_start, t_stop) in enumerate(ranges):
            future = client.submit(
                run_range,
                shipment,
                t_start,
                t_stop,
                key=f"fastgrad-range-{token}-{t_start}",
                priority=len(ranges) - rank,
                pure=False,
            )
            pending[future] = (t_start, t_stop)
        for future in distributed.as_completed(list(pending)):
            t_start, t_stop = pending.pop(future)
            part = Results(*future.result())
            e_start, e_stop = differences.entry_ptr[t_start], differences.entry_ptr[t_stop]
            for name in ("diff", "kinks", "kink_width", "unverifiable"):
                getattr(out, name)[e_start:e_stop] = getattr(part, name)
            out.paths[t_start:t_stop] = part.paths
            computed[e_start:e_stop] = True
            done += int(e_stop - e_start)
            if progress is not None:
                progress(done, total)
    except KeyboardInterrupt:
        if not interruptible:
            raise
    finally:
        if pending:
            client.cancel(list(pending))
        if shipment is not None:
            client.cancel([shipment])
    info = {"workers": len(threads), "threads": int(sum(threads.values())), "ranges": len(ranges)}
    return differences, differences.summarize(out), out.kinks, computed, info
