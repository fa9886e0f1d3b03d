"""A full check on a Dask cluster: speedup with workers, overhead, scatter and per-task costs.

Usage::

    python bench/distributed_check.py [--width 1024] [--rounds 2] [--quick] [--json]

All figures come from one process, as ratios of runs made side by side:

- the same full check (tanh ``W-W-W-10``, batch 32, He-initialised) locally
  with ``threads=2``, on a ``LocalCluster`` of 1 single-threaded worker
  process and on one of 2; rounds alternate, the best of each counts;
  speedup = 1 worker / 2 workers, overhead = 2 workers / local - 1; the three
  reports' numerical gradients are compared to the bit;
- the cost of scattering the workspace (parameters, batch, activations) to
  both workers, for this network and one four times larger;
- the overhead of one range task: many one-unit ranges of a tiny network,
  its time per task and thread beyond the kernel's own time;
- the kernel's time per layer on one thread for two widths, fitted by a
  two-term model (:func:`layer_terms`), which with the other two figures
  gives a wall-time estimate for any network and cluster (:func:`estimate`).
"""

import argparse
import json
import logging
import os
import sys
import time

import numba
import numpy as np

import fastgrad as fg
from fastgrad import distributed
from fastgrad.numerical import DEFAULT_EPSILON, Differences

BATCH = 32
LARGE_NETS = ((5000, 5000, 5000, 5000, 5000, 10), (9990, 10000, 10))
"""The docs' 100M-parameter tanh networks: four 5000-wide hidden layers, or one 10000-wide."""


def problem(sizes, hidden="tanh", batch=BATCH, seed=0):
    """Return ``(net, params, X, y)``: He-initialised, seeded normal inputs, integer labels."""
    net = fg.MLP(list(sizes), hidden=hidden, output="softmax")
    params = net.init("he_normal", seed=seed)
    rng = np.random.default_rng(seed + 1)
    X = rng.normal(size=(batch, sizes[0]))
    y = rng.integers(0, sizes[-1], size=batch)
    return net, params, X, y


def layer_terms(sizes, batch):
    """Return per layer ``(entry-samples, unit-samples x later work)`` of a full check.

    The kernel's time on a layer is about ``a`` per entry-sample (the
    polynomial of each input) plus ``c`` per unit-sample and multiply-add of
    the series carried through the later layers once per unit: one column of
    the next layer's weight (one unit moved), then every later weight whole.
    """
    sizes = [int(s) for s in sizes]
    terms = []
    for u in range(1, len(sizes)):
        later = sum(a * b for a, b in zip(sizes[u + 1 : -1], sizes[u + 2 :], strict=True))
        later += (sizes[u + 1] if u + 1 < len(sizes) else 0) + sizes[-1]
        terms.append((sizes[u] * (sizes[u - 1] + 1) * batch, sizes[u] * batch * later))
    return np.array(terms, dtype=float)


def model_seconds(sizes, batch, a, c):
    """Return the one-thread kernel time of a full check predicted by :func:`layer_terms`."""
    terms = layer_terms(sizes, batch)
    return float(np.sum(terms[:, 0] * a + terms[:, 1] * c))


def layer_times(widths, batch=BATCH):
    """Time each layer's tasks of ``W-W-W-10`` tanh on one thread; fit ``a`` and ``c``.

    The times fitted are CPU times (the process's, its other threads idle):
    what a core of one's own would take, whatever else the machine runs.
    """
    rows, terms, times = [], [], []
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        for width in widths:
            sizes = (width, width, width, 10)
            net, params, X, y = problem(sizes, batch=batch)
            work, _ = net.workspace(params, X, y)
            differences = Differences(work, DEFAULT_EPSILON)
            differences.prepare()
            edges = np.r_[0, np.cumsum(sizes[1:])]
            for u, term in enumerate(layer_terms(sizes, batch), start=1):
                part = distributed.task_range(differences, edges[u - 1], edges[u])
                out = part.new_results()
                wall = cpu = np.inf
                for _ in range(2 if width < 1024 else 1):
                    started = time.process_time()
                    seconds, _ = timed(lambda p=part, o=out: p.run(0, p.n_tasks, o))
                    wall, cpu = min(wall, seconds), min(cpu, time.process_time() - started)
                rows.append({"width": width, "layer": u, "seconds": cpu, "wall_seconds": wall})
                terms.append(term)
                times.append(cpu)
    finally:
        numba.set_num_threads(before)
    terms, times = np.array(terms), np.array(times)
    # least squares in seconds: the layers that take the time decide
    (a, c), *_ = np.linalg.lstsq(terms, times, rcond=None)
    for row, term in zip(rows, terms, strict=True):
        row["model_seconds"] = float(term[0] * a + term[1] * c)
    return {"layers": rows, "a": float(a), "c": float(c)}


def cluster(workers):
    """Return a client of a LocalCluster of ``workers`` single-threaded worker processes."""
    from dask.distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    return Client(
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
    )


def timed(function):
    """Return ``(seconds, result)`` of one call."""
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def cpu_seconds(client=None):
    """Return CPU seconds used so far: this process's, and each worker's of ``client``."""
    workers = {} if client is None else client.run(time.process_time)
    return time.process_time(), workers


def speedup(width, rounds, clients):
    """Time the full check locally (2 threads) and on 1 and 2 workers; return the figures.

    Beside the wall times, the CPU time of every process (this one holds the
    client and the LocalCluster's scheduler): on a machine whose cores other
    work holds, the wall times measure the load, while the CPU times still
    show what the cluster adds and how evenly the workers share the work.
    """
    net, params, X, y = problem((width, width, width, 10))
    runs = {
        "local threads=2": (None, lambda: fg.check(net, params, X, y, threads=2)),
        "1 worker": (clients[1], lambda: fg.check(net, params, X, y, client=clients[1])),
        "2 workers": (clients[2], lambda: fg.check(net, params, X, y, client=clients[2])),
    }
    small = problem((16, 12, 8, 10))
    for client in clients.values():  # load the kernels on every worker first
        fg.check(*small, client=client)
    fg.check(*small, threads=2)
    best, cpu, reports = {}, {}, {}
    for _ in range(rounds):
        for name, (client, run) in runs.items():
            here, workers = cpu_seconds(client)
            seconds, reports[name] = timed(run)
            here_after, workers_after = cpu_seconds(client)
            if seconds < best.get(name, np.inf):
                best[name] = seconds
                cpu[name] = {
                    "client": here_after - here,
                    "workers": [workers_after[w] - workers[w] for w in workers],
                }
    first = reports["local threads=2"].numerical
    identical = all(
        all(np.array_equal(r.numerical[k], first[k]) for k in first) for r in reports.values()
    )
    two = cpu["2 workers"]["workers"]
    return {
        "network": f"tanh {width}-{width}-{width}-10, batch {BATCH}",
        "n_params": net.n_params,
        "seconds": best,
        "cpu_seconds": cpu,
        "speedup_2_vs_1_worker": best["1 worker"] / best["2 workers"],
        "overhead_vs_local": best["2 workers"] / best["local threads=2"] - 1.0,
        # what the wall times would show with a free core per worker: the busiest worker's time
        "cpu_speedup_2_vs_1_worker": sum(cpu["1 worker"]["workers"]) / max(two),
        "cpu_overhead_vs_local": (sum(two) + cpu["2 workers"]["client"])
        / cpu["local threads=2"]["client"]
        - 1.0,
        "identical": identical,
        "ranges": reports["2 workers"].details["ranges"],
        "verdict": reports["2 workers"].verdict.name,
    }


def scatter_cost(client, widths):
    """Return seconds to scatter the shipment of a ``W-W-W-10`` network to every worker, per W."""
    rows = []
    for width in widths:
        net, params, X, y = problem((width, width, width, 10))
        work, _ = net.workspace(params, X, y)
        shipment = distributed.Shipment(work, 1e-7, None)
        nbytes = work.theta.nbytes + work.acts.nbytes + work.pre.nbytes + work.masks.nbytes
        best = np.inf
        for _ in range(3):
            seconds, future = timed(
                lambda s=shipment: client.scatter(s, broadcast=True, hash=False)
            )
            client.cancel([future])
            best = min(best, seconds)
        rows.append({"width": width, "megabytes": nbytes / 1e6, "seconds": best})
    return rows


def task_overhead(client, n_tasks=400):
    """Return the wall time per one-unit range task and thread, kernel time excluded."""
    net, params, X, y = problem((8, 6, 4, 3), batch=4)
    work, _ = net.workspace(params, X, y)
    differences = Differences(work, 1e-7)
    differences.prepare()
    units = differences.n_tasks
    starts = [t % units for t in range(n_tasks)]

    def one_by_one():
        for t in range(units):
            part = distributed.task_range(differences, t, t + 1)
            part.run(0, 1, part.new_results())

    one_by_one()
    kernel = min(timed(one_by_one)[0] for _ in range(5)) / units
    shipment = client.scatter(distributed.Shipment(work, 1e-7, None), broadcast=True, hash=False)
    client.gather(client.map(distributed.run_range, [shipment] * 4, [0] * 4, [1] * 4, pure=False))
    threads = sum(client.nthreads().values())
    seconds, _ = timed(
        lambda: client.gather(
            client.map(
                distributed.run_range,
                [shipment] * n_tasks,
                starts,
                [s + 1 for s in starts],
                pure=False,
            )
        )
    )
    client.cancel([shipment])
    per_task = seconds * threads / n_tasks
    return {
        "tasks": n_tasks,
        "seconds": seconds,
        "per_task_thread_s": per_task - kernel,
        "kernel_s": kernel,
    }


def estimate(sizes, batch, workers, threads_per_worker, fit, scatter_s_per_gb, per_task_s):
    """Return the estimated wall time (s) of a full check of ``sizes`` on a cluster.

    Compute: the fitted one-thread kernel time (:func:`layer_times`) spread
    over every thread; scatter: the parameters and activations to every
    worker (Dask copies them from worker to worker, doubling the holders at
    each step, so about ``log2(workers) + 1`` copies' time); tasks: Dask's
    overhead for :data:`distributed.RANGES_PER_THREAD` ranges per thread.
    """
    threads = workers * threads_per_worker
    compute = model_seconds(sizes, batch, fit["a"], fit["c"]) / threads
    n_params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    gigabytes = (n_params + 3 * batch * sum(sizes)) * 8 / 1e9
    scatter = gigabytes * scatter_s_per_gb * (np.log2(workers) + 1)
    ranges = distributed.RANGES_PER_THREAD * threads
    tasks = ranges * per_task_s / threads
    return {
        "sizes": list(sizes),
        "n_params": n_params,
        "workers": workers,
        "compute_s": compute,
        "scatter_s": scatter,
        "gigabytes": gigabytes,
        "ranges": ranges,
        "tasks_s": tasks,
        "total_s": compute + scatter + tasks,
    }


def describe(figures):
    """Return the figures as text."""
    s = figures["speedup"]
    lines = [f"full check of {s['network']} (N={s['n_params']:,}), best of rounds:"]
    lines += [f"  {name:<16} {sec:8.2f} s" for name, sec in s["seconds"].items()]
    lines.append(
        f"  speedup 2 workers vs 1: {s['speedup_2_vs_1_worker']:.2f}x; 2 workers vs "
        f"local threads=2: {100 * s['overhead_vs_local']:+.1f} %; {s['ranges']} ranges; "
        f"numerical gradients identical to the bit: {s['identical']}"
    )
    for name, c in s["cpu_seconds"].items():
        workers = " + ".join(f"{w:.2f}" for w in c["workers"])
        lines.append(
            f"  CPU {name:<16} this process {c['client']:7.2f} s"
            + (f", workers {workers} s" if workers else "")
        )
    lines.append(
        f"  from CPU times: 2 workers vs 1 (busiest worker) "
        f"{s['cpu_speedup_2_vs_1_worker']:.2f}x; all CPU of 2 workers vs local: "
        f"{100 * s['cpu_overhead_vs_local']:+.1f} %"
    )
    f = figures["fit"]
    lines.append(
        f"one thread, per layer of tanh W-W-W-10 (CPU): a = {f['a'] * 1e9:.2f} ns per "
        f"entry-sample, c = {f['c'] * 1e9:.2f} ns per unit-sample and later multiply-add"
    )
    for row in f["layers"]:
        lines.append(
            f"  W={row['width']:>5} layer {row['layer']}: {row['seconds']:8.3f} s CPU "
            f"(model {row['model_seconds']:8.3f} s; wall {row['wall_seconds']:8.3f} s)"
        )
    for row in figures["scatter"]:
        lines.append(
            f"scatter to 2 workers: width {row['width']}, {row['megabytes']:.1f} MB: "
            f"{row['seconds']:.3f} s ({row['megabytes'] / row['seconds']:.0f} MB/s)"
        )
    t = figures["tasks"]
    lines.append(
        f"per range task: {1e3 * t['per_task_thread_s']:.2f} ms of a worker thread beyond "
        f"the kernel ({t['tasks']} one-unit tasks in {t['seconds']:.2f} s; kernel "
        f"{1e6 * t['kernel_s']:.0f} us)"
    )
    for e in figures["estimates"]:
        lines.append(
            f"estimate, tanh {'-'.join(map(str, e['sizes']))} batch {BATCH} "
            f"(N={e['n_params']:,}) on {e['workers']} single-threaded workers: compute "
            f"{e['compute_s'] / 60:.1f} min, scatter {e['scatter_s']:.0f} s "
            f"({e['gigabytes']:.2f} GB), {e['ranges']:,} ranges {e['tasks_s']:.1f} s; "
            f"total {e['total_s'] / 60:.1f} min"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=1024, help="hidden width (default 1024)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the three runs")
    parser.add_argument("--quick", action="store_true", help="width 384, one round")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    width, rounds = (384, 1) if args.quick else (args.width, args.rounds)
    clients = {1: cluster(1), 2: cluster(2)}
    try:
        figures = {"speedup": speedup(width, rounds, clients)}
        figures["scatter"] = scatter_cost(clients[2], (width, 2 * width))
        figures["tasks"] = task_overhead(clients[2])
    finally:
        for client in clients.values():
            client.cluster.close()
            client.close()
    figures["fit"] = layer_times((width // 2, width))
    widest = max(figures["scatter"], key=lambda row: row["megabytes"])
    figures["estimates"] = [
        estimate(
            sizes,
            BATCH,
            64,
            1,
            figures["fit"],
            widest["seconds"] / (widest["megabytes"] / 1e3),
            figures["tasks"]["per_task_thread_s"],
        )
        for sizes in LARGE_NETS
    ]
    print(json.dumps(figures, indent=2) if args.json else describe(figures))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
