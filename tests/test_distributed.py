"""fastgrad.distributed: the check on a Dask cluster is the local check, to the bit."""

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time

import numba
import numpy as np
import pytest
from networks import HIDDEN, OUTPUTS, case

import fastgrad as fg
from fastgrad import cli, numerical
from fastgrad.kernels import finite_diff

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
dist = pytest.importorskip("fastgrad.distributed")

pytestmark = pytest.mark.filterwarnings(
    # Dask warns when making a scheduler's or worker's scratch directory takes over a
    # second: a loaded machine, not a fault of the check (the suite turns warnings into
    # errors)
    "ignore:Creating scratch directories is taking a surprisingly long time:UserWarning"
)

BATCH = 8


def local_cluster(**workers):
    """A quiet LocalCluster without a dashboard port of its own, of the ``workers`` asked for."""
    return distributed.LocalCluster(dashboard_address=":0", silence_logs=logging.ERROR, **workers)


@pytest.fixture(scope="module", autouse=True)
def scratch_space(tmp_path_factory):
    """Scratch directories of this module's clusters, apart from other processes' Dask runs.

    Dask's default, one ``dask-scratch-space`` in the system's temporary directory, is
    shared by every Dask process of the machine: a new worker waits for its lock and
    deletes the leftovers of killed workers there (the killed-worker test leaves one).
    """
    with dask.config.set({"temporary-directory": str(tmp_path_factory.mktemp("dask"))}):
        yield


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 single-threaded worker processes, shared by the module."""
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.ERROR)
    cluster = local_cluster(n_workers=2, threads_per_worker=1, processes=True)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()
    logger.setLevel(level)


def same_reports(ours, local):
    """Assert two reports say the same thing, numbers to the bit (timings and details aside)."""
    for key, value in local.numerical.items():
        np.testing.assert_array_equal(ours.numerical[key], value, err_msg=key)
    mine, theirs = ours.to_dict(), local.to_dict()
    for report in (mine, theirs):
        report.pop("seconds")
        report.pop("details")
    assert mine == theirs


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_full_check_equals_the_local_one_for_every_activation_and_loss(client, hidden, output):
    seed = 10 * HIDDEN.index(hidden) + OUTPUTS.index(output)
    net, params, X, Y = case(
        [7, 6, 5, 4], hidden, output, batch=BATCH, seed=seed, l2=0.1, dropout=0.2
    )
    grads = net.gradients(params, X, Y)
    grads["dW2"] = grads["dW2"] * 1.5  # something to find, so the hints are compared too
    ours = fg.check(net, params, X, Y, grads, client=client)
    same_reports(ours, fg.check(net, params, X, Y, grads))
    assert ours.details["workers"] == 2 and ours.details["threads"] == 2
    assert ours.details["ranges"] > 1


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_conventions_masks_and_layouts_travel_to_the_workers(client, reduction):
    rng = np.random.default_rng(12)
    net = fg.MLP(
        [6, 5, 4, 3],
        hidden="tanh",
        output="sigmoid",
        reduction=reduction,
        l2=0.2,
        dropout=0.5,
        weights="in_out",
    )
    params = net.init("xavier_normal", seed=3)
    X, Y = rng.normal(size=(6, 7)), rng.random((3, 7))
    masks = [rng.random((5, 7)) < 0.5, rng.random((4, 7)) < 0.5]
    options = dict(layout="columns", dropout_masks=masks)
    ours = fg.check(net, params, X, Y, client=client, **options)
    same_reports(ours, fg.check(net, params, X, Y, **options))
    numerical = fg.numerical_gradient(net, params, X, Y, client=client, **options)
    for key, value in fg.numerical_gradient(net, params, X, Y, **options).items():
        np.testing.assert_array_equal(numerical[key], value, err_msg=key)


def test_parallel_kernel_run_equals_local_for_any_threads_and_ranges(client, monkeypatch):
    # 1,955 entries x batch 16 is past SERIAL_WORK: the run takes the parallel kernel,
    # locally on 1 or all threads and on the workers with one lane each
    net, params, X, Y = case([40, 30, 20, 5], "tanh", "softmax", batch=16, seed=3)
    work, _ = net.workspace(params, X, Y)
    assert numerical.Differences(work, 1e-7).parallel
    local = {t: fg.check(net, params, X, Y, threads=t) for t in {1, numba.config.NUMBA_NUM_THREADS}}
    reports = []
    for per_thread in (1, 4, 50):
        monkeypatch.setattr(dist, "RANGES_PER_THREAD", per_thread)
        reports.append(fg.check(net, params, X, Y, client=client))
    assert len({r.details["ranges"] for r in reports}) == 3
    for report in reports + list(local.values()):
        same_reports(report, local[1])


def test_workers_run_the_kernel_compiled_for_a_local_check(client):
    # arrays that arrive over the network can be unaligned or read-only; numba would
    # compile another specialization for them, which need not round like the local one
    net, params, X, Y = case([40, 30, 20, 5], "relu", "softmax", batch=16, seed=4)
    fg.check(net, params, X, Y, threads=1)
    fg.check(net, params, X, Y, client=client)

    def signatures():
        return [str(s) for s in finite_diff.centered_differences.signatures]

    local = set(signatures())
    for address, theirs in client.run(signatures).items():
        assert theirs and set(theirs) <= local, address


def test_a_range_runs_on_the_worker_threads_and_restores_numba_threads(client):
    net, params, X, Y = case([6, 5, 3], "tanh", "softmax", batch=4, seed=2)
    work, _ = net.workspace(params, X, Y)
    shipment = dist.Shipment(work, 1e-7, None)

    def threads_inside(shipment):
        seen = []
        original = numerical.Differences.run

        def spy(self, *args):
            seen.append(numba.get_num_threads())
            return original(self, *args)

        numerical.Differences.run = spy
        try:
            dist.run_range(shipment, 0, 2)
        finally:
            numerical.Differences.run = original
        return seen, numba.get_num_threads()

    before = client.run(numba.get_num_threads)
    seen, after = client.submit(threads_inside, shipment, pure=False).result()
    assert seen == [1]  # the worker's one thread, not numba's default of every core
    assert after in before.values()


def test_a_worker_of_several_threads_runs_one_range_at_a_time_on_all_of_them():
    # an in-process worker of 2 threads: Dask runs 2 ranges at once, the kernel one at a time
    cluster = local_cluster(n_workers=1, threads_per_worker=2, processes=False)
    net, params, X, Y = case([40, 30, 20, 5], "sigmoid", "softmax", batch=16, seed=5)
    seen, running, most = [], [], []
    original = numerical.Differences.run

    def spy(self, *args):
        seen.append(numba.get_num_threads())
        running.append(1)
        most.append(len(running))
        try:
            return original(self, *args)
        finally:
            running.pop()

    try:
        with distributed.Client(cluster) as threaded:
            numerical.Differences.run = spy
            try:
                ours = fg.check(net, params, X, Y, client=threaded)
            finally:
                numerical.Differences.run = original
    finally:
        cluster.close()
    assert ours.details["threads"] == 2 and ours.details["ranges"] == 16
    assert set(seen) == {min(2, numba.config.NUMBA_NUM_THREADS)} and len(seen) == 16
    assert max(most) == 1
    same_reports(ours, fg.check(net, params, X, Y))


def test_sample_mode_equals_the_local_one(client):
    net, params, X, Y = case([9, 8, 6, 3], "sigmoid", "sigmoid", batch=5, seed=6, l2=0.3)
    ours = fg.check(net, params, X, Y, mode="sample", k=5, seed=2, client=client)
    same_reports(ours, fg.check(net, params, X, Y, mode="sample", k=5, seed=2))
    assert ours.checked < net.n_params


def test_directional_mode_runs_locally(client):
    net, params, X, Y = case([6, 5, 3], "tanh", "softmax", batch=4, seed=1)
    ours = fg.check(net, params, X, Y, mode="directional", client=client)
    same_reports(ours, fg.check(net, params, X, Y, mode="directional"))
    assert "workers" not in ours.details


def test_numerical_gradient_equals_the_local_one(client):
    net, params, X, Y = case([5, 7, 4], "elu", "identity", batch=6, seed=9, l2=0.5)
    ours = fg.numerical_gradient(net, params, X, Y, client=client)
    local = fg.numerical_gradient(net, params, X, Y)
    assert ours.keys() == local.keys()
    for key, value in local.items():
        np.testing.assert_array_equal(ours[key], value, err_msg=key)


def test_progress_counts_every_entry_once_as_ranges_finish(client):
    net, params, X, Y = case([12, 10, 8, 4], "relu", "softmax", batch=6, seed=2)
    seen = []
    report = fg.check(net, params, X, Y, client=client, progress=lambda d, t: seen.append((d, t)))
    assert len(seen) == report.details["ranges"] > 1
    assert [d for d, _ in seen] == sorted({d for d, _ in seen})  # strictly increasing
    assert {t for _, t in seen} == {net.n_params} and seen[-1][0] == net.n_params


def test_ctrl_c_cancels_the_rest_and_returns_a_partial_report(client):
    net, params, X, Y = case([12, 10, 8, 4], "tanh", "softmax", batch=6, seed=5)
    calls = []

    def interrupt(done, total):
        calls.append(done)
        raise KeyboardInterrupt

    report = fg.check(net, params, X, Y, client=client, progress=interrupt)
    assert len(calls) == 1
    assert report.partial and report.verdict == fg.Verdict.INCONCLUSIVE
    assert report.checked == calls[0] < net.n_params
    local = fg.check(net, params, X, Y)
    for key, value in local.numerical.items():
        ours = report.numerical[key]
        done = ~np.isnan(ours)
        np.testing.assert_array_equal(ours[done], value[done], err_msg=key)
    # nothing of the check is left on the cluster: the client sends its cancellation down
    # the scheduler's batched stream, which answers nothing, so the test polls the
    # scheduler until it has handled it (milliseconds on a quiet machine; the bound only
    # stops a broken cancellation from hanging the suite)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(
        "fastgrad-range" in str(key) for keys in client.processing().values() for key in keys
    ):
        time.sleep(0.05)
    assert not any(
        "fastgrad-range" in str(key) for keys in client.processing().values() for key in keys
    )


def test_ctrl_c_before_any_range_finishes_returns_an_empty_partial_report(client, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(client, "submit", interrupted)
    net, params, X, Y = case([5, 4, 3], "relu", "softmax", batch=4, seed=1)
    report = fg.check(net, params, X, Y, client=client)
    assert report.partial and report.checked == 0
    assert report.verdict == fg.Verdict.INCONCLUSIVE
    with pytest.raises(KeyboardInterrupt):  # without a report to return, it propagates
        fg.numerical_gradient(net, params, X, Y, client=client)


@pytest.mark.slow
def test_a_killed_worker_loses_and_duplicates_nothing(client):
    # about 0.2 s of kernel work per range: the kill lands while ranges run and wait
    net, params, X, Y = case([200, 160, 120, 10], "tanh", "softmax", batch=24, seed=8)
    local = fg.check(net, params, X, Y)
    pids = client.run(os.getpid)
    killed = []
    seen = []

    def kill_a_busy_worker(done, total):
        seen.append(done)
        if killed:
            return
        for address, keys in client.processing().items():
            if any("fastgrad-range" in str(key) for key in keys):
                os.kill(pids[address], signal.SIGKILL)
                killed.append(address)
                return

    # on a loaded machine every range can finish between two progress calls, so that no
    # worker is seen busy: the check is run again (at most three times) until a kill lands
    for _ in range(3):
        seen.clear()
        try:
            report = fg.check(net, params, X, Y, client=client, progress=kill_a_busy_worker)
        finally:
            # the nanny starts a new worker process, which imports dask before it joins: back
            # in 2-6 s measured at load 11 on two cores; the wait ends as soon as it has
            # joined, the bound only stops a nanny that never restarts it from hanging the suite
            client.wait_for_workers(2, timeout=300)
        if killed:
            break
    assert killed, "no worker was busy when a range finished, in three checks"
    assert killed[0] not in client.nthreads()  # the nanny started a new worker
    assert len(seen) == report.details["ranges"] and seen[-1] == net.n_params
    same_reports(report, local)


@pytest.mark.parametrize("threads", [1, 2, 5, 64])
def test_ranges_cover_every_task_once_largest_first(threads):
    wanted = min(97, dist.RANGES_PER_THREAD * threads)
    assert len(dist.plan_ranges(np.ones(97), threads)) == wanted
    # uneven costs: a task costlier than a range's share takes its neighbours' share too
    costs = np.random.default_rng(threads).gamma(0.5, size=97)
    ranges = dist.plan_ranges(costs, threads)
    assert len(ranges) <= wanted
    edges = [edge for pair in sorted(ranges) for edge in pair]
    assert edges[0] == 0 and edges[-1] == 97 and edges[1:-1:2] == edges[2::2]
    weights = [costs[start:stop].sum() for start, stop in ranges]
    assert weights == sorted(weights, reverse=True)


def test_a_range_runs_like_the_same_tasks_of_the_whole_run():
    net, params, X, Y = case([9, 7, 5, 3], "softplus", "softmax", batch=5, seed=3)
    work, _ = net.workspace(params, X, Y)
    differences = numerical.Differences(work, 1e-7)
    whole = differences.new_results()
    differences.run(0, differences.n_tasks, whole)
    for t_start, t_stop in [(0, 1), (3, 11), (10, differences.n_tasks)]:
        part = dist.task_range(differences, t_start, t_stop)
        out = part.new_results()
        out.diff[:] = np.nan
        part.run(0, part.n_tasks, out)
        e_start, e_stop = differences.entry_ptr[t_start], differences.entry_ptr[t_stop]
        for name in ("diff", "kinks", "kink_width", "unverifiable"):
            np.testing.assert_array_equal(getattr(out, name), getattr(whole, name)[e_start:e_stop])
        np.testing.assert_array_equal(out.paths, whole.paths[t_start:t_stop])
        np.testing.assert_array_equal(part.entries, differences.entries[e_start:e_stop])


def test_threads_and_client_do_not_mix(client):
    net, params, X, Y = case([4, 3, 2], "tanh", "softmax", batch=3)
    with pytest.raises(ValueError, match="threads"):
        fg.check(net, params, X, Y, client=client, threads=1)


def test_a_client_must_be_a_dask_client():
    net, params, X, Y = case([4, 3, 2], "tanh", "softmax", batch=3)
    with pytest.raises(TypeError, match="client must be a dask.distributed.Client"):
        fg.check(net, params, X, Y, client="tcp://127.0.0.1:8786")
    with pytest.raises(TypeError, match="client"):
        fg.numerical_gradient(net, params, X, Y, client=object())


def test_without_dask_the_error_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    net, params, X, Y = case([4, 3, 2], "tanh", "softmax", batch=3)
    with pytest.raises(ImportError, match=r'pip install "fastgrad\[dask\]"'):
        fg.check(net, params, X, Y, client=object())
    with pytest.raises(ImportError, match=r"fastgrad\[dask\]"):
        fg.numerical_gradient(net, params, X, Y, client=object())
    assert cli.main(["check", "--sizes", "4,3,2", "--workers", "2"]) == 2
    assert "fastgrad[dask]" in capsys.readouterr().err


def test_importing_fastgrad_imports_no_dask():
    probe = (
        "import sys, fastgrad, fastgrad.cli, fastgrad.distributed; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def cli_json(capsys, *argv):
    status = cli.main(["check", "--sizes", "10,8,6,3", "--batch", "5", "--json", *argv])
    return status, json.loads(capsys.readouterr().out)


def test_cli_scheduler_runs_the_check_on_the_cluster(client, capsys):
    status, ours = cli_json(capsys, "--scheduler", client.scheduler.address)
    local_status, local = cli_json(capsys)
    assert status == local_status == 0
    assert ours["details"]["workers"] == 2
    for report in (ours, local):
        report.pop("seconds")
        report.pop("details")
    assert ours == local


@pytest.mark.slow
def test_cli_workers_starts_a_local_cluster(capsys):
    status, ours = cli_json(capsys, "--workers", "2", "--hidden", "tanh")
    assert status == 0
    assert ours["details"]["workers"] == 2 and ours["details"]["threads"] == 2
    assert ours["verdict"] == "CORRECT"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--workers", "2", "--threads", "1"], "--threads applies to a local check"),
        (["--workers", "0"], "expected a positive integer"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not allowed with"),
    ],
)
def test_cli_refuses_bad_cluster_options(capsys, argv, message):
    assert cli.main(["check", "--sizes", "4,3,2", *argv]) == 2
    assert message in capsys.readouterr().err


def test_the_kernel_s_method_intervals_and_path_counts_come_back_from_the_workers(client):
    net, params, X, Y = case([6, 5, 4], "relu", "softmax", batch=6, seed=4)
    X[2] = 0.0  # a blank row: kinks, intervals
    for name in ("b1", "b2"):
        params[name][:] = 0.0
    work, _ = net.workspace(params, X, Y)
    for method in ("exact", "direct"):
        local = numerical.Differences(work, 1e-3, method=method)
        values, kinks, _ = local.compute()
        remote, remote_values, remote_kinks, computed, _ = dist.compute(
            client, work, 1e-3, method=method
        )
        assert computed.all()
        np.testing.assert_array_equal(remote_values, values)
        np.testing.assert_array_equal(remote_kinks, kinks)
        np.testing.assert_array_equal(remote.kink_lo, local.kink_lo)
        np.testing.assert_array_equal(remote.unverifiable, local.unverifiable)
        assert remote.paths == local.paths
    assert kinks.sum() > 0 and local.paths["direct"] > 0


@pytest.mark.parametrize("method", ["exact", "direct"])
def test_a_cluster_check_judges_kinks_like_the_local_one(client, method):
    # A blank row at zero biases: kink entries with intervals, and unverifiable ones.
    net, params, X, Y = case([6, 5, 4, 3], "relu", "softmax", batch=6, seed=4)
    X[2] = 0.0
    for name in ("b1", "b2", "b3"):
        params[name][:] = 0.0
    grads = net.gradients(params, X, Y)
    grads["db1"] = grads["db1"] * 6  # wrong only in what the blank row touches
    ours = fg.check(net, params, X, Y, grads, client=client, method=method)
    local = fg.check(net, params, X, Y, grads, method=method)
    same_reports(ours, local)
    assert ours.details["paths"] == local.details["paths"]
    assert [(k.interval, k.unverifiable) for k in ours.kinks] == [
        (k.interval, k.unverifiable) for k in local.kinks
    ]
    assert any(k.interval is not None for k in local.kinks)


@pytest.mark.parametrize("as_json", [False, True])
def test_cli_unreachable_scheduler_is_one_error_line(monkeypatch, capsys, as_json):
    @contextlib.contextmanager
    def unreachable(scheduler=None, workers=None):
        raise ValueError(f"cannot reach the Dask scheduler {scheduler}: timed out")
        yield

    monkeypatch.setattr(dist, "connect", unreachable)
    argv = ["check", "--sizes", "4,3,2", "--scheduler", "tcp://head-node:8786"]
    assert cli.main(argv + (["--json"] if as_json else [])) == 2
    out, err = capsys.readouterr()
    assert err.strip() == (
        "fastgrad: error: --scheduler: cannot reach the Dask scheduler tcp://head-node:8786: "
        "timed out"
    )
    assert "Traceback" not in err
    if as_json:
        assert json.loads(out)["error"].startswith("--scheduler: cannot reach")
