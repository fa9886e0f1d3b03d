"""A full check on a Dask LocalCluster: speedup with workers, overhead, scatter and task costs.

The figures and how they are measured are those of ``distributed_check.py``,
which prints them on its own; here each is a pytest-benchmark with its figures
in ``extra_info`` and in the end-of-run summary.
"""

import distributed_check
import pytest

pytest.importorskip("distributed")

SECTION = "Dask LocalCluster of single-threaded worker processes"


@pytest.fixture(scope="module")
def clients():
    """Clients of a 1-worker and a 2-worker LocalCluster."""
    made = {1: distributed_check.cluster(1), 2: distributed_check.cluster(2)}
    yield made
    for client in made.values():
        client.cluster.close()
        client.close()


@pytest.mark.slow
@pytest.mark.parametrize("width", [1024])
def test_speedup_and_overhead(benchmark, bench, clients, width):
    benchmark.group = "dask: full check"
    figures = benchmark.pedantic(
        distributed_check.speedup, args=(width, 1, clients), rounds=1, iterations=1
    )
    benchmark.extra_info.update(figures)
    seconds = ", ".join(f"{name} {s:.2f} s" for name, s in figures["seconds"].items())
    bench.note(
        SECTION,
        f"{figures['network']}: {seconds}; 2 workers vs 1: "
        f"{figures['speedup_2_vs_1_worker']:.2f}x; vs local threads=2: "
        f"{100 * figures['overhead_vs_local']:+.1f} %; identical: {figures['identical']}",
    )
    assert figures["identical"]


def test_scatter(benchmark, bench, clients):
    benchmark.group = "dask: scatter"
    rows = benchmark.pedantic(
        distributed_check.scatter_cost, args=(clients[2], (512, 1024)), rounds=1, iterations=1
    )
    benchmark.extra_info["rows"] = rows
    for row in rows:
        bench.note(
            SECTION,
            f"scatter to 2 workers, W={row['width']} ({row['megabytes']:.1f} MB): "
            f"{row['seconds']:.3f} s",
        )


def test_task_overhead(benchmark, bench, clients):
    benchmark.group = "dask: per-task overhead"
    figures = benchmark.pedantic(
        distributed_check.task_overhead, args=(clients[2],), rounds=1, iterations=1
    )
    benchmark.extra_info.update(figures)
    bench.note(
        SECTION,
        f"per range task: {1e3 * figures['per_task_thread_s']:.2f} ms of a worker thread "
        "beyond the kernel",
    )
