"""Tests of the ``fastgrad`` command, through ``fastgrad.cli.main`` and once as installed."""

import contextlib
import io
import json
import re
import shutil
import signal
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from checkout import in_checkout

import fastgrad as fg
from fastgrad import _progress, _terminal, cli

SMALL = ["--sizes", "6,5,4,3", "--hidden", "tanh", "--batch", "16"]


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def seeded_batch(n_in, n_out, batch, seed):
    """The command's documented batch: default_rng([seed, 1]), normal X, then labels."""
    rng = np.random.default_rng([seed, 1])
    return rng.standard_normal((batch, n_in)), rng.integers(0, n_out, size=batch)


@pytest.fixture
def saved(tmp_path):
    """A 6-5-4-3 tanh network with its batch and correct gradients, as arrays."""
    net = fg.MLP([6, 5, 4, 3], hidden="tanh")
    params = net.init("xavier_normal", seed=1)
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(16, 6)), rng.integers(0, 3, size=16)
    return tmp_path, {**params, **net.gradients(params, X, Y), "X": X, "Y": Y}


# --- check ------------------------------------------------------------------------------


@pytest.mark.threads
def test_default_check_is_the_mnist_sized_network(capsys):
    code, out, err = run(capsys, "check")
    assert code == 0
    assert "MLP([784, 128, 64, 10], hidden='relu', output='softmax'" in out
    assert "109,386 of 109,386 entries" in out
    for name in ("W1", "b1", "W2", "b2", "W3", "b3"):
        assert re.search(rf"^{name}\s", out, re.MULTILINE)
    assert out.rstrip().endswith("-> CORRECT")
    assert err in ("", cli.COMPILING + "\n")  # on a cold cache it says, once, that it compiles


def test_json_carries_the_numbers_of_the_python_report(capsys):
    code, out, _ = run(capsys, "check", *SMALL, "--seed", "3", "--json")
    assert code == 0
    data = json.loads(out)  # stdout holds the JSON and nothing else
    net = fg.MLP([6, 5, 4, 3], hidden="tanh")
    params = net.init("he_normal", seed=3)
    X, Y = seeded_batch(6, 3, 16, seed=3)
    report = fg.check(net, params, X, Y, seed=3)
    assert data["difference"] == report.difference
    assert data["loss"] == report.loss
    assert data["verdict"] == report.verdict.name == "CORRECT"
    assert [t["difference"] for t in data["tensors"]] == [
        t.difference for t in report.tensors.values()
    ]
    assert [t["bands"] for t in data["tensors"]] == [
        t.to_dict()["bands"] for t in report.tensors.values()
    ]


@pytest.mark.parametrize(
    ("options", "expect"),
    [
        (["--mode", "sample", "--k", "3"], {"mode": "sample", "details.samples_per_tensor": 3}),
        (["--mode", "directional", "--k", "2"], {"mode": "directional", "details.directions": 2}),
        (["--epsilon", "1e-5"], {"epsilon": 1e-5}),
        (
            ["--thresholds", "1e-8,1e-5,1e-3"],
            {"thresholds.correct": 1e-8, "thresholds.suspicious": 1e-3},
        ),
        (["--threads", "1"], {"details.threads": 1}),
        (["--l2", "0.5"], {"network.l2": 0.5}),
        (["--dropout", "0.25"], {"network.dropout": [0.25, 0.25]}),
        (["--hidden", "relu,elu"], {"network.hidden": ["relu", "elu"]}),
        (
            ["--hidden", "leaky_relu:0.2,elu:0.5"],
            {"network.hidden": [["leaky_relu", 0.2], ["elu", 0.5]], "verdict": "CORRECT"},
        ),
        (["--hidden", "softplus:2"], {"network.hidden": [["softplus", 2.0]] * 2}),
        (
            ["--output", "sigmoid", "--loss", "binary_cross_entropy"],
            {"network.loss": "binary_cross_entropy"},
        ),
        (["--output", "identity"], {"network.loss": "mse"}),
        (["--init", "normal:std=0.3"], {"verdict": "CORRECT"}),
        (["--seed", "7", "--batch", "5"], {"batch": 5}),
    ],
)
def test_options_reach_the_check(capsys, options, expect):
    code, out, _ = run(capsys, "check", *SMALL, *options, "--json")
    assert code == 0, out
    data = json.loads(out)
    for path, value in expect.items():
        found = data
        for key in path.split("."):
            found = found[key]
        assert found == value


def test_quiet_prints_one_line(capsys):
    code, out, _ = run(capsys, "check", *SMALL, "--quiet")
    assert code == 0
    assert out.count("\n") == 1 and out.startswith("CORRECT: difference ")


def test_exit_1_when_the_verdict_fails(capsys):
    # correct gradients judged against impossible thresholds
    code, out, _ = run(capsys, "check", *SMALL, "--thresholds", "1e-30,1e-29,1e-28")
    assert code == 1
    assert out.rstrip().endswith("-> WRONG")


def test_params_with_correct_gradients_pass(capsys, saved):
    tmp_path, arrays = saved
    np.savez(tmp_path / "net.npz", **arrays)
    code, out, _ = run(capsys, "check", "--params", str(tmp_path / "net.npz"), "--hidden", "tanh")
    assert code == 0
    assert "MLP([6, 5, 4, 3], hidden='tanh'" in out and "batch 16" in out


def test_params_with_a_wrong_gradient_names_the_tensor_and_the_hint(capsys, saved):
    tmp_path, arrays = saved
    arrays["dW2"] = arrays["dW2"] * 16  # a forgotten 1/m, m = 16
    np.savez(tmp_path / "wrong.npz", **arrays)
    code, out, _ = run(capsys, "check", "--params", str(tmp_path / "wrong.npz"), "--hidden", "tanh")
    assert code == 1
    assert re.search(r"^W2 .*WRONG", out, re.MULTILINE)
    assert "W2: analytic = 16 x numerical, x m = 16: a missing 1/m?" in out


def test_params_without_gradients_or_batch_check_fastgrad_backprop(capsys, saved):
    tmp_path, arrays = saved
    np.savez(tmp_path / "weights.npz", **{k: v for k, v in arrays.items() if k[0] in "Wb"})
    code, out, _ = run(
        capsys,
        "check",
        "--params",
        str(tmp_path / "weights.npz"),
        "--hidden",
        "tanh",
        "--batch",
        "9",
        "--json",
    )
    assert code == 0
    assert json.loads(out)["batch"] == 9


def test_params_in_columns_layout(capsys, saved):
    tmp_path, arrays = saved
    columns = {k: (v.reshape(-1, 1) if k.startswith(("b", "db")) else v) for k, v in arrays.items()}
    columns["X"] = arrays["X"].T
    np.savez(tmp_path / "cols.npz", **columns)
    code, _, _ = run(
        capsys,
        "check",
        "--params",
        str(tmp_path / "cols.npz"),
        "--hidden",
        "tanh",
        "--layout",
        "columns",
    )
    assert code == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"W2": np.zeros((4, 4))}, "W2 has shape (4, 4)"),
        ({"b2": np.zeros(7)}, "b2 has shape (7,)"),
        ({"dW3": np.zeros((3, 5))}, "dW3 has shape (3, 5)"),
        ({"W1": np.zeros(5)}, "W1 must be a 2-D"),
        ({"extra": np.zeros(2)}, "unexpected array(s) extra"),
        ({"W5": np.zeros((2, 3))}, "has no W4"),
        ({"W2": np.array([None, 1], dtype=object)}, "without unpickling"),
    ],
)
def test_params_with_bad_arrays_exit_2_naming_them(capsys, saved, change, message):
    tmp_path, arrays = saved
    np.savez(tmp_path / "bad.npz", **{**arrays, **change})
    code, out, err = run(capsys, "check", "--params", str(tmp_path / "bad.npz"), "--hidden", "tanh")
    assert code == 2
    assert out == ""
    assert err.startswith("fastgrad: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("content", [None, b"not an archive", "npy"])
def test_params_that_are_not_npz_exit_2(capsys, tmp_path, content):
    path = tmp_path / "file.npz"
    if content == "npy":
        np.save(tmp_path / "file.npy", np.zeros(3))
        path = tmp_path / "file.npy"
    elif content is not None:
        path.write_bytes(content)
    code, _, err = run(capsys, "check", "--params", str(path))
    assert code == 2
    assert err.startswith("fastgrad: error: ") and str(path) in err


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--sizes", "4,x"],
        ["check", "--mode", "exact"],
        ["check", "--sizes", "4,3", "--params", "a.npz"],
        ["check", "--batch"],
        ["check", "--batch", "0"],
        ["diagnose", "--depth", "0"],
        ["diagnose", "--depth", "3", "--sizes", "4,3"],
    ],
)
def test_argparse_errors_exit_2_in_one_line(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("fastgrad: error: ") and err.count("\n") == 1
    assert f"see 'fastgrad {argv[0]} --help'" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--sizes", "4,3,2", "--hidden", "swish"], "unknown hidden activation 'swish'"),
        (["check", "--sizes", "4,3,2", "--output", "softmax", "--loss", "mse"], "cannot be paired"),
        (["check", "--sizes", "4,3,2", "--thresholds", "1e-2,1e-4,1e-7"], "must increase"),
        (["check", "--sizes", "4,3,2", "--epsilon", "-1"], "epsilon"),
        (["check", "--sizes", "4,3,2", "--init", "he_normal:std=2"], "std"),
        (["check", "--params", "x.npz", "--init", "he_normal"], "--init does not apply"),
        (["diagnose", "--init", "he_normal,unknown"], "unknown initializer 'unknown'"),
        (["diagnose", "--init", "normal:std"], "not KEY=VALUE"),
        (["check", "--sizes", "4,3,2", "--thresholds", "1e-7,1e-4"], "three positive numbers"),
        (["check", "--sizes", "4,3,2", "--k", "3"], "--k applies to --mode sample"),
        (["diagnose", "--sizes", "4,3,2", "--init", "normal:std=-1"], "std"),
    ],
)
def test_validation_errors_exit_2_in_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("fastgrad: error: ") and message in err and err.count("\n") == 1


# --- no rough edges: every input error is one line naming what is wrong, exit 2 --------------


def without(arrays, *names):
    return {k: v for k, v in arrays.items() if k not in names}


@pytest.mark.parametrize("missing", [("X", "Y"), ("X",), ("Y",)])
def test_params_with_gradients_but_no_batch_exit_2(capsys, saved, missing):
    tmp_path, arrays = saved
    np.savez(tmp_path / "net.npz", **without(arrays, *missing))
    argv = ["check", "--params", str(tmp_path / "net.npz"), "--hidden", "tanh"]
    for extra in ([], ["--batch", "16"], ["--seed", "0"]):  # both must be given
        code, out, err = run(capsys, *argv, *extra)
        assert code == 2 and out == ""
        assert err.startswith("fastgrad: error: ") and err.count("\n") == 1
        assert f"holds your gradients without {' and '.join(missing)}" in err
        assert "--batch and --seed" in err


def test_params_with_gradients_on_an_explicitly_drawn_batch_say_so(capsys, saved):
    tmp_path, arrays = saved
    np.savez(tmp_path / "net.npz", **without(arrays, "X", "Y"))
    argv = ["check", "--params", str(tmp_path / "net.npz"), "--hidden", "tanh"]
    argv += ["--batch", "16", "--seed", "5"]
    code, out, _ = run(capsys, *argv)
    # the gradients were computed on another batch: judged WRONG, and the reader is told why
    assert code == 1
    assert out.startswith(
        f"note: X and Y drawn at random (--batch 16 --seed 5), not read from {tmp_path / 'net.npz'}"
    )
    code, out, _ = run(capsys, *argv, "--json")
    assert json.loads(out)["details"]["drawn"] == {"arrays": ["X", "Y"], "batch": 16, "seed": 5}
    code, out, _ = run(capsys, *argv, "--quiet")
    assert out.count("\n") == 1 and "X and Y drawn at random" in out


def test_params_without_gradients_say_the_batch_was_drawn(capsys, saved):
    tmp_path, arrays = saved
    np.savez(tmp_path / "w.npz", **{k: v for k, v in arrays.items() if k[0] in "WbX"})
    code, out, _ = run(capsys, "check", "--params", str(tmp_path / "w.npz"), "--hidden", "tanh")
    assert code == 0
    assert out.startswith("note: Y drawn at random (--batch 16 --seed 0)")


@pytest.mark.parametrize(
    ("plot", "message"),
    [
        ("no/such/folder/x.png", "does not exist"),
        ("x.nosuchformat", "cannot draw a .nosuchformat file"),
    ],
)
def test_diagnose_plot_to_a_bad_path_exits_2_before_any_work(capsys, tmp_path, plot, message):
    path = tmp_path / plot
    code, out, err = run(capsys, "diagnose", "--sizes", "4,3,2", "--plot", str(path))
    assert code == 2 and out == ""
    assert err.startswith(f"fastgrad: error: --plot {path}") and message in err
    assert err.count("\n") == 1 and not path.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--epsilon", "-1e-7"], "argument --epsilon: expected a positive number"),
        (["check", "--epsilon=-1e-7"], "argument --epsilon: expected a positive number"),
        (["check", "--epsilon", "nan"], "argument --epsilon: expected a positive number"),
        (["check", "--seed", "-1"], "argument --seed: expected a non-negative integer"),
        (["check", "--l2", "-0.5"], "argument --l2: expected a non-negative number"),
        (["check", "--k", "-3", "--mode", "sample"], "argument --k: expected a positive integer"),
        (["check", "--threads", "0"], "argument --threads: expected an integer in 1.."),
        (["check", "--thresholds", "-1e-7,1e-4,1e-2"], "argument --thresholds: expected three"),
        (["diagnose", "--std", "-0.1"], "argument --std: expected a non-negative number"),
        (["diagnose", "--depth", "-2"], "argument --depth: expected a positive integer"),
    ],
)
def test_bad_numbers_name_the_option(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("fastgrad: error: ") and message in err and err.count("\n") == 1


def test_negative_numbers_pass_where_they_make_sense(capsys):
    # orthogonal takes any gain; a negative one flips the signs of the weights
    code, out, _ = run(
        capsys,
        "diagnose",
        "--depth",
        "2",
        "--width",
        "8",
        "--init",
        "orthogonal",
        "--gain",
        "-1.5",
        "--batch",
        "16",
        "--json",
    )
    assert code == 0
    assert json.loads(out)["runs"][0]["label"] == "orthogonal(gain=-1.5)"


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--epsilon", "-1e-7"],
        ["check", "--sizes", "4,3,2", "--hidden", "swish"],
        ["check", "--params", "no-such-file.npz"],
        ["check", "--nonsense"],
        ["diagnose", "--plot", "no/such/folder/x.png"],
    ],
)
def test_json_prints_one_object_even_on_bad_input(capsys, argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 2
    data = json.loads(out)
    assert list(data) == ["error"] and err == f"fastgrad: error: {data['error']}\n"


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_low_precision_arrays_warn_once_naming_the_file(capsys, saved, dtype):
    tmp_path, arrays = saved
    low = {k: (v.astype(dtype) if k != "Y" else v) for k, v in arrays.items()}
    np.savez(tmp_path / "low.npz", **low)
    path = tmp_path / "low.npz"
    code, out, err = run(capsys, "check", "--params", str(path), "--hidden", "tanh", "--quiet")
    assert code in (0, 1) and out.count("\n") == 1
    assert err.count("\n") == 1, err  # one line: no source line, no repeats per array
    assert err.startswith(f"fastgrad: warning: {path}: W1, b1, ") and f"are {dtype}" in err


def test_bugs_are_not_bad_input(capsys, monkeypatch):
    # a TypeError raised past validation is an internal error: it must surface, not exit 2
    def broken(*args, **kwargs):
        raise TypeError("unsupported operand type(s)")

    monkeypatch.setattr(cli, "check", broken)
    with pytest.raises(TypeError, match="unsupported operand"):
        cli.main(["check", *SMALL])
    monkeypatch.setattr(cli, "diagnose", broken)
    with pytest.raises(TypeError, match="unsupported operand"):
        cli.main(["diagnose", "--sizes", "4,3,2"])
    # with --json, stdout still holds one JSON object saying what broke
    with pytest.raises(TypeError):
        cli.main(["diagnose", "--sizes", "4,3,2", "--json"])
    out, _ = capsys.readouterr()
    assert json.loads(out) == {"error": "internal error: TypeError: unsupported operand type(s)"}


def test_input_type_errors_are_bad_input(capsys, saved):
    tmp_path, arrays = saved
    np.savez(tmp_path / "c.npz", **{**arrays, "W1": arrays["W1"] + 0j})
    code, _, err = run(capsys, "check", "--params", str(tmp_path / "c.npz"), "--hidden", "tanh")
    assert code == 2 and err.startswith("fastgrad: error: W1 must hold real numbers")


def test_hidden_help_lists_the_activations(capsys):
    code, out, _ = run(capsys, "check", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert all(name in text for name in fg.MLP.__init__.__globals__["HIDDEN_ACTIVATIONS"])


def test_no_command_prints_help_and_exits_2(capsys):
    code, out, err = run(capsys)
    assert code == 2
    assert "usage: fastgrad" in err and "check" in err and "diagnose" in err


def test_check_help_names_every_exit_status(capsys):
    code, out, _ = run(capsys, "check", "--help")
    out = " ".join(out.split())
    for verdict in fg.Verdict:
        assert f"{cli.exit_status(verdict)} " in out and verdict.name in out
    assert "3 INCONCLUSIVE" in out


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"fastgrad {fg.__version__}"


# --- progress, interruption and the rich table --------------------------------------------


LONG = ["--sizes", "200,100,10", "--batch", "256"]  # 21,110 entries x 256 > 4e6: chunked


@pytest.mark.threads
def test_ctrl_c_prints_the_partial_report_and_exits_3_inconclusive(capsys, monkeypatch):
    calls = []

    def interrupt_on_second_chunk(done, total):
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def fake_bar(enabled):
        yield interrupt_on_second_chunk

    monkeypatch.setattr(_terminal, "progress_bar", fake_bar)
    # one thread: chunks keep at least four tasks per thread, so with many threads the
    # work would be one chunk and the second progress call would never come
    code, out, _ = run(capsys, "check", *LONG, "--threads", "1")
    assert code == cli.INCONCLUSIVE == 3
    assert "PARTIAL" in out and "-> INCONCLUSIVE" in out
    # the chunk before the callback was done: its entries are in the report
    assert f"{calls[1]:,} of 21,110 entries computed" in out


def test_no_bar_when_stderr_is_not_a_terminal_or_the_check_is_short(capsys, monkeypatch):
    seen = []

    @contextlib.contextmanager
    def spy(enabled):
        seen.append(enabled)
        yield None

    monkeypatch.setattr(_terminal, "progress_bar", spy)
    monkeypatch.setattr(_progress, "PROGRESS_WORK", 0)
    run(capsys, "check", *SMALL)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    run(capsys, "check", *SMALL, "--quiet")
    run(capsys, "check", *SMALL, "--json")
    run(capsys, "check", *SMALL)
    monkeypatch.setattr(_progress, "PROGRESS_WORK", 1e12)
    run(capsys, "check", *SMALL)
    assert seen == [False, False, False, True, False]


def test_progress_bar_draws_only_after_its_delay():
    from rich.console import Console

    stream = io.StringIO()
    bar = _terminal.ProgressBar(Console(file=stream, force_terminal=True, width=100), delay=0.0)
    bar(10, 100)
    bar(60, 100)
    assert bar.progress is not None
    bar.close()
    assert "checking" in stream.getvalue() and "100" in stream.getvalue()

    # a bar that never comes due: with a finite delay, a stall of the test process that long
    # would draw it
    quiet = _terminal.ProgressBar(Console(file=io.StringIO()), delay=float("inf"))
    quiet(10, 100)
    assert quiet.progress is None
    with _terminal.progress_bar(False) as nothing:
        assert nothing is None


def test_rich_table_on_a_terminal_shows_the_same_numbers(capsys, monkeypatch, saved):
    tmp_path, arrays = saved
    arrays["dW2"] = arrays["dW2"] * 16
    np.savez(tmp_path / "wrong.npz", **arrays)
    argv = ["check", "--params", str(tmp_path / "wrong.npz"), "--hidden", "tanh"]
    _, plain, _ = run(capsys, *argv)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, styled, _ = run(capsys, *argv)
    assert code == 1
    styled = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", styled)
    assert "C/A/S/W" in styled and styled != plain
    for name, difference in re.findall(
        r"^([Wb]\d)\s+\S+(?:, \d+\))?\s+\S+\s+(\S+)", plain, re.MULTILINE
    ):
        assert re.search(rf"{name}\s.*{re.escape(difference)}", styled)
    assert "0/0/0/20" in styled and "WRONG" in styled
    assert "missing 1/m" in styled
    assert "overall: difference 7.932e-01 -> WRONG" in styled


def test_without_rich_a_terminal_gets_the_plain_report_and_no_bar(capsys, monkeypatch):
    _, plain, _ = run(capsys, "check", *SMALL)
    for name in [m for m in sys.modules if m == "rich" or m.startswith("rich.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, _ = run(capsys, "check", *SMALL)
    assert code == 0
    # the same report but for the time it took, and the compile time of a first check on a
    # cold cache (the first of the two runs when this test runs first)
    took = r", [0-9.e+-]+ s( \(\+ [0-9.e+-]+ s compiling the kernels, once\))?\n"
    assert re.sub(took, "\n", out) == re.sub(took, "\n", plain)
    assert re.sub(took, "\n", out) != out
    with _terminal.progress_bar(True) as bar:
        assert bar is None


# --- diagnose ------------------------------------------------------------------------------


def test_diagnose_prints_one_table_per_initializer(capsys):
    code, out, _ = run(
        capsys,
        "diagnose",
        "--sizes",
        "32,32,32,32,4",
        "--init",
        "he_normal,normal",
        "--std",
        "0.01",
        "--batch",
        "64",
    )
    assert code == 0
    assert "\nhe_normal\n" in out and "\nnormal(std=0.01)\n" in out
    assert "forward vanished" in out
    assert out.count("flagged layers:") == 2


def test_diagnose_json_matches_python(capsys):
    code, out, _ = run(
        capsys,
        "diagnose",
        "--depth",
        "4",
        "--width",
        "24",
        "--outputs",
        "3",
        "--hidden",
        "tanh",
        "--init",
        "lecun_normal,orthogonal:gain=1.5",
        "--batch",
        "32",
        "--seed",
        "2",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    expected = fg.diagnose(
        [24] * 5 + [3], "tanh", ["lecun_normal", ("orthogonal", {"gain": 1.5})], batch=32, seed=2
    ).to_dict()
    assert data == expected


def test_diagnose_plot(capsys, tmp_path):
    path = tmp_path / "signals.png"
    code, out, err = run(
        capsys,
        "diagnose",
        "--sizes",
        "16,16,16,4",
        "--init",
        "he_normal,xavier_normal",
        "--batch",
        "32",
        "--plot",
        str(path),
    )
    assert code == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(path) in err


# --- as installed -----------------------------------------------------------------------------

CHILD_TIMEOUT = 1800
"""Seconds a command run in a child process may take: a bound that only stops a hung child.

The console script runs the installed copy of fastgrad, whose kernels have numba cache
entries of their own that a reinstall makes stale: its first check compiles them
(25 s of CPU, 309 s of wall time measured at load 12 on two cores).
"""


def test_console_script_runs():
    script = shutil.which("fastgrad", path=str(Path(sys.executable).parent)) or shutil.which(
        "fastgrad"
    )
    assert script, "the fastgrad console script is not installed"
    done = subprocess.run(
        [script, "check", "--sizes", "5,4,3", "--quiet"],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("CORRECT")
    done = subprocess.run(
        [script, "check", "--sizes", "5,4,3", "--hidden", "nope"],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    assert done.returncode == 2 and done.stderr.startswith("fastgrad: error:")


def test_importing_fastgrad_stays_light():
    code = (
        "import sys, fastgrad; heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('rich', 'matplotlib')]; print(heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        **in_checkout(),
    )
    assert done.returncode == 0 and done.stdout.strip() == "[]"


# --- your loss, conventions, weight layout ----------------------------------------------


def save_with_tanh_loss(saved, key):
    """Save the ``saved`` network with its loss as a tanh network under ``key``; return the file."""
    tmp_path, arrays = saved
    net = fg.MLP([6, 5, 4, 3], hidden="tanh")
    params = {k: v for k, v in arrays.items() if k[0] in "Wb"}
    arrays[key] = np.float64(net.loss(params, arrays["X"], arrays["Y"]))
    np.savez(tmp_path / "net.npz", **arrays)
    return str(tmp_path / "net.npz")


def test_params_with_a_matching_loss_check_as_usual(capsys, saved):
    path = save_with_tanh_loss(saved, "J")
    code, _, _ = run(capsys, "check", "--params", path, "--hidden", "tanh")
    assert code == 0


def test_params_with_a_loss_of_another_network_exit_3_naming_it(capsys, saved):
    path = save_with_tanh_loss(saved, "loss")
    code, out, _ = run(capsys, "check", "--params", path)  # relu stated
    assert code == 3
    assert "your loss matches hidden=['tanh', 'tanh']" in out
    assert out.splitlines()[-1] == "overall: nothing compared -> INCONCLUSIVE"
    code, out, _ = run(capsys, "check", "--params", path, "--quiet")
    assert (code, out) == (3, "INCONCLUSIVE: nothing compared\n")


@pytest.mark.parametrize("left_out", ["X", "Y"])
def test_params_with_a_loss_but_not_its_batch_exit_2(capsys, saved, left_out):
    tmp_path, arrays = saved
    net = fg.MLP([6, 5, 4, 3], hidden="tanh")
    params = {k: v for k, v in arrays.items() if k[0] in "Wb"}
    arrays["J"] = np.float64(net.loss(params, arrays["X"], arrays["Y"]))
    del arrays[left_out]
    np.savez(tmp_path / "net.npz", **arrays)
    code, out, err = run(capsys, "check", "--params", str(tmp_path / "net.npz"), "--hidden", "tanh")
    assert code == 2 and out == ""
    assert err.startswith("fastgrad: error: ") and f"without {left_out}" in err


def test_params_with_gradients_but_not_their_batch_exit_2(capsys, saved):
    tmp_path, arrays = saved
    del arrays["Y"]
    np.savez(tmp_path / "net.npz", **arrays)
    code, out, err = run(capsys, "check", "--params", str(tmp_path / "net.npz"), "--hidden", "tanh")
    assert code == 2 and out == ""
    assert "your gradients without Y" in err


def test_a_one_d_weight_is_named_in_the_layout_asked_for(capsys, saved):
    tmp_path, arrays = saved
    np.savez(tmp_path / "bad.npz", **{**arrays, "W1": np.zeros(5)})
    argv = ["check", "--params", str(tmp_path / "bad.npz"), "--hidden", "tanh"]
    code, _, err = run(capsys, *argv, "--weights", "in_out")
    assert code == 2 and "W1 must be a 2-D (n_in, n_out) array; got shape (5,)" in err


def test_params_with_dropout_masks_of_the_users_forward_pass(capsys, tmp_path):
    net = fg.MLP([4, 6, 5, 3], hidden="relu", dropout=[0.25, 0.0])
    params = net.init("he_normal", seed=4)
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(4, 8)), rng.integers(0, 3, size=8)
    D1 = rng.random((6, 8)) >= 0.25
    grads = net.gradients(params, X, Y, "columns", dropout_masks=[D1, None])
    J = net.loss(params, X, Y, "columns", dropout_masks=[D1, None])
    arrays = {**params, **grads, "X": X, "Y": Y, "J": np.float64(J)}
    np.savez(tmp_path / "net.npz", **arrays, D1=D1)
    argv = ["check", "--params", str(tmp_path / "net.npz"), "--hidden", "relu"]
    argv += ["--dropout", "0.25,0", "--layout", "columns"]
    code, out, _ = run(capsys, *argv)
    assert code == 0, out
    np.savez(tmp_path / "net.npz", **arrays)
    code, out, _ = run(capsys, *argv)
    assert code == 3 and "arrays D1, D2, ... in --params" in out
    np.savez(tmp_path / "net.npz", **arrays, D3=D1)
    code, _, err = run(capsys, *argv)
    assert code == 2 and "D3" in err and "2 hidden layer(s)" in err


def test_reduction_and_in_out_weights_from_the_command_line(capsys, tmp_path):
    net = fg.MLP([4, 6, 2], hidden="tanh", output="identity", reduction="mean", weights="in_out")
    params = net.init("xavier_normal", seed=2)
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(9, 4)), rng.normal(size=(9, 2))
    arrays = {**params, **net.gradients(params, X, Y), "X": X, "Y": Y}
    arrays["J"] = np.float64(net.loss(params, X, Y))
    np.savez(tmp_path / "net.npz", **arrays)
    argv = ["check", "--params", str(tmp_path / "net.npz"), "--hidden", "tanh"]
    argv += ["--output", "identity", "--reduction", "mean", "--weights", "in_out"]
    code, out, _ = run(capsys, *argv)
    assert code == 0, out
    assert "objective J = (1/(m k)) sum_b sum_k (z_bk - y_bk)^2" in out
    code, out, err = run(capsys, *argv[:-2])
    assert code == 2 and "your weights look (n_in, n_out)" in err


@pytest.mark.parametrize("form", ["text", "--json", "--quiet"])
def test_exit_3_where_the_gradient_vanishes(capsys, tmp_path, form):
    net = fg.MLP([3, 5, 2], hidden="tanh", output="identity", loss="mse")
    params = net.init("xavier_normal", seed=0)
    X = np.random.default_rng(0).normal(size=(8, 3))
    Y = net.predict(params, X)  # an exact fit: the gradient is rounding noise
    np.savez(tmp_path / "fit.npz", **params, **net.gradients(params, X, Y), X=X, Y=Y)
    argv = ["check", "--params", str(tmp_path / "fit.npz"), "--hidden", "tanh"]
    argv += ["--output", "identity", "--loss", "mse"]
    code, out, _ = run(capsys, *argv, *([] if form == "text" else [form]))
    assert code == cli.INCONCLUSIVE == 3
    if form == "--json":
        data = json.loads(out)
        assert data["verdict"] == "INCONCLUSIVE"
        assert any("the gradient vanishes at this point" in r for r in data["reasons"])
        assert not any(t["verdict"] in ("SUSPICIOUS", "WRONG") for t in data["tensors"])
    elif form == "--quiet":
        assert out.startswith("INCONCLUSIVE: difference ")
    else:
        assert "the gradient vanishes at this point" in out
        assert out.rstrip().endswith("-> INCONCLUSIVE")


# --- the first run compiles: said once on stderr, timed apart -------------------------------------


def test_compiling_is_said_once_and_timed_apart():
    import numba
    from numba.core import event

    @numba.njit  # new, uncached functions: this test sees them compile
    def inner(x):
        return x + 1.0

    @numba.njit
    def outer(x):
        return inner(x) * 2.0

    stream = io.StringIO()
    watch = cli.CompileWatch(stream)
    with event.install_listener("numba:compile", watch):
        outer(1.0)  # compiles outer, and inner inside it
        outer(2.0)  # compiled already: nothing to say or time
        first = watch.seconds
        inner(1.0)
    assert stream.getvalue() == cli.COMPILING + "\n"
    assert 0.0 < first == watch.seconds


def test_compile_time_is_kept_out_of_the_check_time(capsys, monkeypatch):
    # The command's clock, read by its compile watch and around the check, moves 1 us a
    # reading and 0.5 s in each pretended compile: what the check's time holds is then
    # arithmetic, not how busy the machine is or what the real check loads from disk.
    clock = types.SimpleNamespace(now=0.0)

    def perf_counter():
        clock.now += 1e-6
        return clock.now

    monkeypatch.setattr(cli, "time", types.SimpleNamespace(perf_counter=perf_counter))
    real_check = cli.check

    def check_that_compiles(*args, **kwargs):
        from numba.core import event

        with event.trigger_event("numba:compile", data={}):  # as numba announces a compile
            clock.now += 0.5
        report = real_check(*args, **kwargs)
        with event.trigger_event("numba:compile", data={}):  # compiles while building a report
            clock.now += 0.5
        return report

    monkeypatch.setattr(cli, "check", check_that_compiles)
    code, out, err = run(capsys, "check", *SMALL, "--json")
    assert code == 0 and err == cli.COMPILING + "\n"
    data = json.loads(out)
    # the check's time no longer holds the 1 s, and is not made up of what was left after
    # taking compile time from too short a time
    assert data["details"]["compile_s"] >= 1.0 > data["seconds"] > 0.0
    code, out, _ = run(capsys, "check", *SMALL)
    assert re.search(r", [0-9.e-]+ s \(\+ [0-9.]+ s compiling the kernels, once\)\n", out)
    monkeypatch.setattr(cli, "check", real_check)
    code, out, err = run(capsys, "check", *SMALL, "--json")
    assert err == "" and json.loads(out)["details"]["compile_s"] == 0.0


@pytest.mark.parametrize("error", [RuntimeError, ValueError])
def test_a_ctrl_c_dropped_by_the_compiler_still_reads_as_interrupted(capsys, monkeypatch, error):
    """A Ctrl-C in a ctypes callback of numba's compiler is dropped; the compile fails later."""

    def compile_broken_by_ctrl_c(*args, **kwargs):
        try:
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # Ctrl-C
        except KeyboardInterrupt:
            pass  # what a ctypes callback does with it: printed and dropped
        raise error("no compiled object yet for <Library 'sample_loss'>")

    monkeypatch.setattr(cli, "check", compile_broken_by_ctrl_c)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, as at start
    try:
        assert cli.main(["check", "--sizes", "3,2", "--json"]) == cli.INTERRUPTED
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    finally:
        signal.signal(signal.SIGINT, before)
    out, err = capsys.readouterr()
    assert json.loads(out) == {"error": "interrupted"}
    assert "fastgrad: interrupted" in err


def test_an_error_without_ctrl_c_is_still_a_crash(capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "check", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["check", "--sizes", "3,2", "--json"])
    assert "internal error: RuntimeError: a bug" in capsys.readouterr().out
