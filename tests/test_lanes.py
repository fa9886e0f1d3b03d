"""Lanes of a compiled kernel run on threads: all of them, and all finished on return."""

import multiprocessing
import signal
import threading
import time

import numpy as np
import pytest

from fastgrad import _lanes


def recording_kernel(log, delay=0.0):
    def kernel(lane, lanes, out):
        if lane > 0:
            time.sleep(delay)  # the other lanes finish after lane 0
        out[lane] = lanes
        log.append((lane, threading.get_ident()))

    return kernel


@pytest.mark.parametrize("lanes", [1, 2, 3, 8])
def test_every_lane_runs_once_and_all_have_finished_on_return(lanes):
    log, out = [], np.zeros(lanes)
    _lanes.run_lanes(recording_kernel(log, delay=0.05), lanes, out)
    assert sorted(lane for lane, _ in log) == list(range(lanes))
    np.testing.assert_array_equal(out, lanes)


def test_lane_zero_runs_on_the_calling_thread_and_the_others_do_not():
    log = []
    _lanes.run_lanes(recording_kernel(log, delay=0.02), 3, np.zeros(3))
    threads = dict(log)
    assert threads[0] == threading.get_ident()
    assert threading.get_ident() not in (threads[1], threads[2])


def test_an_exception_in_any_lane_is_raised_after_every_lane_returned():
    done = []

    def kernel(lane, lanes):
        if lane == 1:
            raise ValueError("lane 1 failed")
        time.sleep(0.05 if lane == 0 else 0.3)  # lane 2 ends well after lane 0
        done.append(lane)

    with pytest.raises(ValueError, match="lane 1 failed"):
        _lanes.run_lanes(kernel, 3)
    assert sorted(done) == [0, 2]


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_ctrl_c_while_waiting_for_the_lanes_is_raised_after_every_lane_returned():
    # Ctrl-C reaches the calling thread while it waits for the other lanes: had it returned
    # then, a lane would still be writing into arrays the caller reuses (a check's kept
    # working arrays, the values of its partial report)
    caller, done = threading.get_ident(), []

    def kernel(lane, lanes):
        if lane == 1:
            time.sleep(0.1)  # lane 0 has returned: the caller waits
            signal.pthread_kill(caller, signal.SIGINT)
            time.sleep(0.3)
        done.append(lane)

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            _lanes.run_lanes(kernel, 2)
    finally:
        signal.signal(signal.SIGINT, before)
    assert sorted(done) == [0, 1]


def test_a_call_whose_pool_another_thread_replaced_meanwhile_still_runs_its_lanes(monkeypatch):
    # two checks at once on different thread counts: the second grows the shared pool between
    # the first one's taking the pool and its handing it the lanes
    monkeypatch.setattr(_lanes, "_pool", None)
    monkeypatch.setattr(_lanes, "_pool_size", 0)
    first_took_it, grown = threading.Event(), threading.Event()
    executor = _lanes._executor

    def interleaved(workers):
        pool = executor(workers)
        if threading.current_thread().name == "first":
            first_took_it.set()
            grown.wait(10)
        return pool

    monkeypatch.setattr(_lanes, "_executor", interleaved)
    log, out, failed = [], np.zeros(2), []

    def first():
        try:
            _lanes.run_lanes(recording_kernel(log), 2, out)
        except Exception as error:
            failed.append(error)

    thread = threading.Thread(target=first, name="first")
    thread.start()
    assert first_took_it.wait(10)
    _lanes.run_lanes(recording_kernel([]), 4, np.zeros(4))
    grown.set()
    thread.join(10)
    assert not failed
    np.testing.assert_array_equal(out, 2)


def _lanes_in_child(queue):
    log = []
    _lanes.run_lanes(recording_kernel(log), 3, np.zeros(3))
    queue.put(sorted(lane for lane, _ in log))


def lanes_of_a_forked_child(start, timeout):
    """Fork a child that runs three lanes, started by ``start(child)``; return its lanes."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_lanes_in_child, args=(queue,))
    start(child)
    child.join(timeout=timeout)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0
    return queue.get(timeout=5)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
# JAX, when an earlier test imported it, warns at every fork; the child here never uses JAX
@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")
def test_a_process_forked_after_the_pool_started_runs_its_lanes():
    _lanes.run_lanes(recording_kernel([]), 3, np.zeros(3))  # the pool's threads exist now
    assert lanes_of_a_forked_child(lambda child: child.start(), timeout=60) == [0, 1, 2]


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")
def test_a_process_forked_while_another_thread_held_the_pool_lock_runs_its_lanes():
    # a thread of the parent was choosing the pool when the process forked: the child's copy
    # of the lock is held by a thread it does not have

    def start_holding_the_lock(child):
        with _lanes._pool_lock:
            child.start()

    assert lanes_of_a_forked_child(start_holding_the_lock, timeout=30) == [0, 1, 2]
