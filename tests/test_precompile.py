"""A first-ever check compiles the finite-difference kernel in a child process, robustly."""

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
import precompiled
import pytest
from checkout import in_checkout
from numba.core import caching

import fastgrad as fg
from fastgrad import _precompile, cli
from fastgrad.numerical import Differences, kernel_signature

TESTS = str(Path(__file__).resolve().parent)
SIGNATURE = (numba.float64,)


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """Return a new dispatcher of ``precompiled.<name>`` whose disk cache is a new folder."""
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "cache"))
    # the child imports the functions from this folder
    path = os.pathsep.join(filter(None, [TESTS, os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    monkeypatch.delenv(_precompile.SWITCH, raising=False)
    monkeypatch.setattr(_precompile, "usable_cores", lambda: 2)

    def make(name):
        return numba.njit(cache=True)(getattr(precompiled, name).py_func)

    yield make
    _precompile.stop_all()


def test_the_child_compiles_and_this_process_loads_its_code(fresh):
    twice = fresh("twice")
    child = _precompile.start(twice, SIGNATURE)
    assert child is not None and child.process.poll() is None
    _precompile.wait_for(twice)
    assert child.merged and child.waited > 0.0
    assert not os.path.exists(child.folder)
    assert twice(1.5) == 3.0
    # loaded from the cache the child filled: nothing compiled here
    assert twice.stats.cache_hits[SIGNATURE] == 1 and not twice.stats.cache_misses
    # another process (a new dispatcher on the same cache) starts nothing
    assert _precompile.start(fresh("twice"), SIGNATURE) is None


def test_nothing_is_started_when_the_code_is_there(fresh, monkeypatch):
    twice = fresh("twice")
    twice(1.0)  # compiled here, and cached
    assert _precompile.is_cached(twice, SIGNATURE)
    assert _precompile.start(twice, SIGNATURE) is None
    assert _precompile.start(fresh("twice"), SIGNATURE) is None  # from the disk cache
    # a signature not compiled yet is not there
    assert not _precompile.is_cached(twice, (numba.int64,))
    # one core, or the switch off: nothing either
    thrice = fresh("thrice")
    monkeypatch.setattr(_precompile, "usable_cores", lambda: 1)
    assert _precompile.start(thrice, SIGNATURE) is None
    monkeypatch.setattr(_precompile, "usable_cores", lambda: 2)
    monkeypatch.setenv(_precompile.SWITCH, "0")
    assert _precompile.start(thrice, SIGNATURE) is None


def test_a_cache_numba_reads_another_way_starts_nothing(fresh, monkeypatch):
    # the cache's index is read through numba's private helpers: another numba version
    # may name them otherwise, which must cost the child compile, not the check
    def unreadable(dispatcher, signature):
        raise AttributeError("'IndexDataCacheFile' object has no attribute '_load_index'")

    monkeypatch.setattr(_precompile, "is_cached", unreadable)
    assert _precompile.start(fresh("thrice"), SIGNATURE) is None


def test_a_failed_child_leaves_the_compile_here(fresh, monkeypatch):
    monkeypatch.setattr(_precompile, "CHILD", "import sys; sys.exit(3)")
    thrice = fresh("thrice")
    child = _precompile.start(thrice, SIGNATURE)
    _precompile.wait_for(thrice)
    assert child.process.returncode == 3 and not child.merged
    assert not os.path.exists(child.folder)
    assert thrice(2.0) == 6.0
    assert thrice.stats.cache_misses[SIGNATURE] == 1  # compiled here


def test_a_killed_child_leaves_the_compile_here(fresh):
    thrice = fresh("thrice")
    child = _precompile.start(thrice, SIGNATURE)
    child.process.kill()
    _precompile.wait_for(thrice)
    assert not child.merged
    assert thrice(2.0) == 6.0 and thrice.stats.cache_misses[SIGNATURE] == 1


def test_a_child_that_compiles_nothing_usable_leaves_the_compile_here(fresh):
    # the child's code fails to type: it exits with an error, and so does the compile here
    fails = fresh("fails")
    child = _precompile.start(fails, SIGNATURE)
    _precompile.wait_for(fails)
    assert child.process.returncode != 0 and not child.merged
    with pytest.raises(numba.TypingError):
        fails(1.0)


def test_an_unwritable_cache_leaves_the_compile_here(fresh, monkeypatch):
    def refuse(self, key, data):
        raise PermissionError("read-only")

    monkeypatch.setattr(caching.IndexDataCacheFile, "save", refuse)
    twice = fresh("twice")
    child = _precompile.start(twice, SIGNATURE)
    assert child.finish() is False
    assert not os.path.exists(child.folder)
    monkeypatch.undo()  # the fixture's settings go too, but this dispatcher keeps its cache
    assert twice(1.0) == 2.0 and twice.stats.cache_misses[SIGNATURE] == 1


def test_ctrl_c_while_waiting_kills_the_child(fresh, monkeypatch):
    twice = fresh("twice")
    child = _precompile.start(twice, SIGNATURE)

    def interrupted(timeout):
        raise KeyboardInterrupt  # Ctrl-C while waiting for the child's word

    monkeypatch.setattr(child, "_compiled", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _precompile.wait_for(twice)
    assert child.process.poll() is not None  # killed, not left compiling
    assert not os.path.exists(child.folder)


def test_a_second_ctrl_c_while_cleaning_leaves_the_folder_to_stop_all(fresh, monkeypatch):
    twice = fresh("twice")
    child = _precompile.start(twice, SIGNATURE)
    remove = _precompile.shutil.rmtree

    def interrupted(path, ignore_errors=False):
        monkeypatch.setattr(_precompile.shutil, "rmtree", remove)  # once, then a plain removal
        raise KeyboardInterrupt

    monkeypatch.setattr(child, "_compiled", lambda timeout: False)
    monkeypatch.setattr(_precompile.shutil, "rmtree", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _precompile.wait_for(twice)
    assert os.path.exists(child.folder)
    _precompile.stop_all()  # as the command does on its way out
    assert child.process.poll() is not None
    assert not os.path.exists(child.folder)


def test_the_command_leaves_no_child_behind(fresh, monkeypatch, capsys):
    started, original = [], _precompile.start

    def start(dispatcher, signature):
        started.append(original(fresh("twice"), SIGNATURE))
        return started[-1]

    monkeypatch.setattr(_precompile, "start", start)
    # the check never calls the function the child compiles: the command stops it at the end
    assert cli.main(["check", "--sizes", "3,2", "--quiet"]) == 0
    child = started[0]
    assert child.process.poll() is not None and not os.path.exists(child.folder)
    assert _precompile._pending == {}
    _, err = capsys.readouterr()
    assert err.startswith(cli.COMPILING)  # said at once, whatever else compiles


BCE = "binary_cross_entropy"


def test_ctrl_c_during_the_command_kills_the_child(fresh, monkeypatch, capsys):
    # the child has a session of its own: Ctrl-C at the terminal reaches the command only
    started, original = [], _precompile.start

    def start(dispatcher, signature):
        started.append(original(fresh("twice"), SIGNATURE))
        return started[-1]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_precompile, "start", start)
    monkeypatch.setattr(cli, "check", interrupted)
    assert cli.main(["check", "--sizes", "3,2", "--quiet"]) == cli.INTERRUPTED
    child = started[0]
    assert child.process.poll() is not None and not os.path.exists(child.folder)


def _gone(child, seconds=60.0):
    """Whether the child process has ended and its folder is gone within ``seconds``."""
    try:
        child.process.wait(seconds)
    except subprocess.TimeoutExpired:
        return False
    for _ in range(int(seconds * 10)):  # removed once the child has ended
        if not os.path.exists(child.folder):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("when", ["compiling", "compiled"])
def test_a_child_whose_parent_is_gone_removes_its_folder_at_once(fresh, when):
    child = _precompile.start(fresh("twice"), SIGNATURE)
    if when == "compiled":
        assert child.process.stdout.read(1) == _precompile.DONE
    child.process.stdin.close()  # what the parent's end of the pipe does when it dies
    assert _gone(child)


PARENT = """
import os, signal, sys, time
import numba, precompiled
from fastgrad import _precompile
numba.config.CACHE_DIR = sys.argv[1]
_precompile.usable_cores = lambda: 2
twice = numba.njit(cache=True)(precompiled.twice.py_func)
child = _precompile.start(twice, (numba.float64,))
print(child.folder, flush=True)
while not any(name.endswith(".nbi") for _, _, names in os.walk(child.folder) for name in names):
    time.sleep(0.05)
time.sleep(1.0)  # the child's compile is over
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_parent_killed_after_the_compile_leaves_no_folder(tmp_path):
    """The command killed (SIGKILL, a closed terminal) between the child's compile and its use."""
    kwargs = in_checkout()
    env = kwargs.pop("env")
    env["PYTHONPATH"] = os.pathsep.join([TESTS, env["PYTHONPATH"]])
    env["TMPDIR"] = str(tmp_path)
    env.pop(_precompile.SWITCH, None)
    run = subprocess.run(
        [sys.executable, "-c", PARENT, str(tmp_path / "cache")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )
    assert run.returncode == -9, run.stderr[-2000:]
    folder = run.stdout.strip()
    assert os.path.dirname(folder) == str(tmp_path)
    for _ in range(600):  # the orphaned child's cleaning: at once
        if not os.path.exists(folder):
            break
        time.sleep(0.1)
    assert not os.path.exists(folder)


@pytest.mark.parametrize(
    "sizes, options, mode",
    [
        ([5, 4, 3], {}, "full"),
        ([5, 4, 3], {}, "sample"),
        ([6, 5, 4, 1], {"hidden": "tanh", "output": "sigmoid", "loss": BCE}, "full"),
        ([4, 3, 2], {"output": "identity", "loss": "mse", "dropout": 0.5}, "sample"),
    ],
)
@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_the_kernel_signature_is_the_one_a_check_calls(sizes, options, mode, layout):
    net = fg.MLP(sizes, **options)
    params = net.init("he_normal", seed=0)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((7, sizes[0]))
    Y = rng.standard_normal((7, sizes[-1])) if net.loss_name == "mse" else rng.integers(0, 2, 7)
    if layout == "columns":
        X, Y = X.T, (Y.T if Y.ndim == 2 else Y)
    work, _ = net.workspace(params, X, Y, layout)
    entries = None if mode == "full" else np.array([0, 3, net.n_params - 1])
    differences = Differences(work, 1e-6, entries)
    differences.prepare()
    arguments = differences.kernel_arguments(0, differences.n_tasks, differences.new_results())
    assert tuple(numba.typeof(a) for a in arguments) == kernel_signature(full=mode == "full")


COLD_CHECK = ["check", "--sizes", "7,6,5,3", "--batch", "9", "--json"]


@pytest.mark.slow
def test_a_first_ever_check_takes_the_kernel_from_the_child(tmp_path):
    """The command on an empty cache: its kernel compiled ahead, the report that of a warm run."""
    probe = (
        "import json, sys\n"
        "from fastgrad import cli\n"
        "from fastgrad.kernels import finite_diff\n"
        "code = cli.main(sys.argv[1:])\n"
        "stats = finite_diff.centered_differences.stats\n"
        "print(json.dumps({'code': code, 'hits': len(stats.cache_hits),"
        " 'misses': len(stats.cache_misses)}))\n"
    )
    kwargs = in_checkout()
    env = dict(kwargs.pop("env"), NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop(_precompile.SWITCH, None)
    run = subprocess.run(
        [sys.executable, "-c", probe, *COLD_CHECK],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
        **kwargs,
    )
    *report, last = run.stdout.strip().splitlines()
    probed = json.loads(last)
    assert probed == {"code": 0, "hits": 1, "misses": 0}  # loaded, never compiled here
    assert run.stderr.startswith(cli.COMPILING)
    cold = json.loads("\n".join(report))
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert cli.main(COLD_CHECK) == 0  # this process: kernels compiled or cached long ago
    warm = json.loads(buffer.getvalue())
    assert cold["details"].pop("compile_s") > 0.0
    warm["details"].pop("compile_s")
    cold.pop("seconds")
    warm.pop("seconds")
    assert cold == warm  # every figure of the report, to the bit
