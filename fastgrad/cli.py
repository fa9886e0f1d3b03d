"""The ``fastgrad`` command: ``fastgrad check`` and ``fastgrad diagnose``.

Exit status: 0 when the gradients pass (CORRECT or ACCEPTABLE) or a diagnosis
is done; 1 when a check finds them SUSPICIOUS or WRONG; 2 on bad input (a bad
option, an unreadable or ill-shaped file); 3 when the check is INCONCLUSIVE
(among others, a check interrupted with Ctrl-C: the report of the part done is
printed, marked partial, and exits 1 if that part already failed); 130 when
Ctrl-C comes before any report.

Bad input is found before any work starts, and only there does an error
become exit 2 with one line, ``fastgrad: error: ...``; an exception raised
later is a bug and ends in a traceback (exit 1).
"""

import argparse
import contextlib
import inspect
import json
import math
import os
import re
import signal
import sys
import threading
import time
import warnings
import zipfile
from pathlib import Path

import numba
import numpy as np
from numba.core import event as numba_event

from . import _precompile, _terminal
from . import init as initializers
from ._conventions import REDUCTIONS, WEIGHT_LAYOUTS
from ._format import overall_difference
from ._matching import user_loss
from ._packing import PrecisionWarning
from ._progress import reports_progress
from .check import DEFAULT_SAMPLES, MODES, check
from .diagnostics import diagnose, random_batch
from .kernels import finite_diff
from .mlp import HIDDEN_ACTIVATIONS, MLP, OUTPUT_LOSSES
from .numerical import check_epsilon, kernel_signature
from .thresholds import Thresholds

INTERRUPTED = 130
INCONCLUSIVE = 3


class UsageError(Exception):
    """Bad input found before any work: the command prints it in one line and exits 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are :class:`UsageError`, printed in one line."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


NUMERIC_OPTIONS = frozenset(
    {
        "--batch",
        "--depth",
        "--dropout",
        "--epsilon",
        "--gain",
        "--k",
        "--l2",
        "--outputs",
        "--seed",
        "--sizes",
        "--std",
        "--thresholds",
        "--threads",
        "--width",
        "--workers",
    }
)
_NEGATIVE = re.compile(r"-(\d|\.\d|inf|nan)", re.IGNORECASE)


def _attach_negative_values(argv):
    """Write ``--epsilon -1e-7`` as ``--epsilon=-1e-7``.

    argparse takes ``-1e-7`` (unlike ``-1`` or ``-0.5``) for an option of its
    own and says "expected one argument"; attached, the value reaches the
    option's parser, whose message names the option.
    """
    out, i = [], 0
    while i < len(argv):
        token = argv[i]
        if token in NUMERIC_OPTIONS and i + 1 < len(argv) and _NEGATIVE.match(argv[i + 1]):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
        else:
            out.append(token)
            i += 1
    return out


def _comma_list(kind, what):
    def parse(text):
        try:
            return [kind(item) for item in text.split(",") if item.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {what}; got {text!r}"
            ) from None

    return parse


def _integer(minimum):
    """Parser of an integer of at least ``minimum``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            wanted = {0: "a non-negative integer", 1: "a positive integer"}.get(
                minimum, f"an integer >= {minimum}"
            )
            raise argparse.ArgumentTypeError(f"expected {wanted}; got {text!r}")
        return value

    return parse


_positive = _integer(1)


def _threads(text):
    most = numba.config.NUMBA_NUM_THREADS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= most:
        raise argparse.ArgumentTypeError(
            f"expected an integer in 1..{most} (NUMBA_NUM_THREADS); got {text!r}"
        )
    return value


def _real(check, wanted):
    """Parser of a finite number for which ``check(value)`` holds."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and check(value)):
            raise argparse.ArgumentTypeError(f"expected {wanted}; got {text!r}")
        return value

    return parse


def _thresholds(text):
    values = _comma_list(float, "numbers")(text)
    if len(values) != 3 or not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected three positive numbers CORRECT,ACCEPTABLE,SUSPICIOUS; got {text!r}"
        )
    return values


def _activations(text):
    """Parse ``"leaky_relu:0.2,tanh"`` into hidden entries, ``[("leaky_relu", 0.2), "tanh"]``.

    The names and parameters are checked by :class:`~fastgrad.MLP`.
    """
    entries = []
    for item in _comma_list(str, "activations")(text):
        name, sep, value = item.partition(":")
        if not sep:
            entries.append(name)
            continue
        try:
            entries.append((name, float(value)))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected NAME or NAME:NUMBER (leaky_relu:0.2); got {item!r}"
            ) from None
    return entries


def _init_specs(text, std=None, gain=None):
    """Parse ``"he_normal,normal:std=0.01"`` into ``[(name, options), ...]``.

    ``std`` and ``gain`` go to each initializer that takes them and was not given them inline.
    """
    specs = []
    for item in text.split(","):
        name, *pairs = item.strip().split(":")
        options = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep:
                raise ValueError(f"initializer option {pair!r} in {item!r} is not KEY=VALUE")
            try:
                options[key] = float(value)
            except ValueError:
                options[key] = value
        accepted = inspect.signature(initializers.get(name)).parameters
        for key, value in (("std", std), ("gain", gain)):
            if value is not None and key in accepted:
                options.setdefault(key, value)
        specs.append((name, options))
    return specs


def _sizes_or(parser, default):
    """Add ``--sizes`` in a new mutually exclusive group of ``parser``; return the group."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--sizes",
        type=_comma_list(int, "integers"),
        help=f"layer widths, input first (default {default})",
    )
    return group


def _network_options(parser, batch):
    parser.add_argument(
        "--hidden",
        default=["relu"],
        type=_activations,
        help=(
            "hidden activation, or a comma-separated list with one per hidden layer: "
            f"{', '.join(HIDDEN_ACTIVATIONS)} (default relu); NAME:VALUE sets leaky_relu's "
            "slope, elu's alpha or softplus' beta (leaky_relu:0.2,tanh)"
        ),
    )
    parser.add_argument(
        "--output",
        default="softmax",
        choices=list(OUTPUT_LOSSES),
        help="output function (default softmax)",
    )
    parser.add_argument("--loss", help="loss (default: the output's pair)")
    # defaults are filled in after parsing, so that a check knows whether they were given
    parser.add_argument("--batch", type=_positive, help=f"batch size (default {batch})")
    parser.add_argument("--seed", type=_integer(0), help="seed of weights and data (default 0)")
    parser.add_argument(
        "--json", action="store_true", help='print JSON only (on bad input: {"error": ...})'
    )
    parser.set_defaults(default_batch=batch)


def build_parser():
    """Return the ``argparse`` parser of the command."""
    from . import __version__

    parser = _Parser(
        prog="fastgrad",
        description=(
            "Check neural-network gradients by exact centered differences, and diagnose "
            "vanishing and exploding signals at initialization."
        ),
    )
    parser.add_argument("--version", action="version", version=f"fastgrad {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{check,diagnose}")

    cmd = commands.add_parser(
        "check",
        help="check a network's gradient",
        description=(
            "Check a gradient against centered differences: the built-in network by default, or "
            "your own saved one with --params. Exit 0 CORRECT/ACCEPTABLE, 1 SUSPICIOUS/WRONG, "
            "2 bad input, 3 INCONCLUSIVE (or interrupted), 130 interrupted before any report."
        ),
    )
    source = _sizes_or(cmd, "784,128,64,10")
    source.add_argument(
        "--params",
        metavar="FILE.npz",
        help=(
            "your network: arrays W1, b1, ... (sizes come from their shapes), optionally dW1, db1, "
            "... (the gradient to check; default fastgrad's backprop), X, Y (the batch they "
            "were computed on; without gradients or loss, or with --batch and --seed given "
            "with gradients, a seeded batch is drawn), J (your loss: checked first against the "
            "network) and D1, D2, ... (your 0/1 dropout masks, one per hidden layer with --dropout)"
        ),
    )
    _network_options(cmd, batch=64)
    cmd.add_argument(
        "--l2",
        type=_real(lambda v: v >= 0, "a non-negative number"),
        default=0.0,
        help="L2 penalty lambda (default 0)",
    )
    cmd.add_argument(
        "--reduction",
        choices=REDUCTIONS,
        default="course",
        help="loss convention: course (default), mean or sum over all elements (torch's)",
    )
    cmd.add_argument(
        "--weights",
        choices=WEIGHT_LAYOUTS,
        default="out_in",
        help="weights in --params stored (n_out, n_in) (default) or (n_in, n_out)",
    )
    cmd.add_argument(
        "--dropout",
        type=_comma_list(float, "rates"),
        help="drop probability of the hidden layers, or one per hidden layer",
    )
    cmd.add_argument("--init", help="initializer, NAME[:KEY=VALUE...] (default he_normal)")
    cmd.add_argument(
        "--layout",
        choices=("rows", "columns"),
        default="rows",
        help="samples in rows (default) or columns of X and Y in --params",
    )
    cmd.add_argument(
        "--mode",
        choices=MODES,
        default="full",
        help="every entry, k sampled entries or k random directions per tensor",
    )
    cmd.add_argument(
        "--k", type=_positive, help="entries (sample mode) or directions (directional) per tensor"
    )
    cmd.add_argument(
        "--epsilon",
        type=_real(lambda v: v > 0, "a positive number"),
        help="step of the centered differences (default 1e-7)",
    )
    cmd.add_argument(
        "--thresholds",
        type=_thresholds,
        help="upper bounds of CORRECT,ACCEPTABLE,SUSPICIOUS (default 1e-7,1e-4,1e-2)",
    )
    cmd.add_argument(
        "--threads",
        type=_threads,
        help=f"threads of the kernels, 1..{numba.config.NUMBA_NUM_THREADS} (default all)",
    )
    cluster = cmd.add_mutually_exclusive_group()
    cluster.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on the workers of a running Dask scheduler, tcp://HOST:8786 (fastgrad[dask])",
    )
    cluster.add_argument(
        "--workers",
        type=_positive,
        help="run on a local Dask cluster of N single-threaded worker processes (fastgrad[dask])",
    )
    cmd.add_argument("--quiet", action="store_true", help="print only the verdict line")
    cmd.set_defaults(run=run_check)

    cmd = commands.add_parser(
        "diagnose",
        help="per-layer signals at initialization",
        description=(
            "Measure the forward variance and backward gradient norms per layer at initialization "
            "beside the wide-layer theory, and flag layers where they vanish or explode."
        ),
    )
    shape = _sizes_or(cmd, "784,256,256,256,10")
    shape.add_argument(
        "--depth", type=_positive, help="hidden layers of a uniform stack of --width"
    )
    cmd.add_argument(
        "--width", type=_positive, default=256, help="width with --depth (default 256)"
    )
    cmd.add_argument(
        "--outputs", type=_positive, default=10, help="output units with --depth (default 10)"
    )
    _network_options(cmd, batch=256)
    cmd.add_argument(
        "--init",
        default="he_normal",
        help="initializers to compare, NAME[:KEY=VALUE...],... (default he_normal)",
    )
    cmd.add_argument(
        "--std",
        type=_real(lambda v: v >= 0, "a non-negative number"),
        help="std of the initializers that take one (normal, trunc_normal)",
    )
    cmd.add_argument(
        "--gain",
        type=_real(lambda v: True, "a number"),
        help="gain of the initializers that take one",
    )
    cmd.add_argument("--plot", metavar="FILE.png", help="also draw the signals to this image")
    cmd.set_defaults(run=run_diagnose)
    return parser


def _hidden(names):
    return names[0] if len(names) == 1 else names


def _load_npz(path):
    """Return the arrays of an ``.npz`` file, never unpickling anything."""
    not_npz = f"{path} is not an .npz archive of named arrays (write one with numpy.savez)"
    try:
        data = np.load(path, allow_pickle=False)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, EOFError, zipfile.BadZipFile):
        raise ValueError(not_npz) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(not_npz)
    with data:
        try:
            return {key: data[key] for key in data.files}
        except ValueError as exc:
            raise ValueError(f"cannot read {path} without unpickling: {exc}") from None
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from None


def _in_float64(path, arrays):
    """Convert the arrays of less than float64 precision, with one warning for the file."""
    # dropout masks D1, D2, ... hold 0 and 1, which any float holds exactly
    low = [
        k
        for k, v in arrays.items()
        if v.dtype.kind == "f" and v.dtype.itemsize < 8 and not re.fullmatch(r"D[0-9]+", k)
    ]
    if low:
        dtypes = sorted({str(arrays[k].dtype) for k in low})
        eps = max(np.finfo(arrays[k].dtype).eps for k in low)
        warnings.warn(
            f"{path}: {', '.join(low)} {'is' if len(low) == 1 else 'are'} "
            f"{'/'.join(dtypes)}; fastgrad computes in float64. Expect agreement with a float64 "
            f"computation only to about {eps:.0e} relative.",
            PrecisionWarning,
            stacklevel=2,
        )
    return {k: (v.astype(np.float64) if k in low else v) for k, v in arrays.items()}


def _from_params(args):
    """Return ``(net, params, grads, X, Y, loss, dropout_masks, drawn)`` from ``--params``.

    ``drawn`` names the arrays of the batch drawn at random (empty when the
    file holds ``X`` and ``Y``).
    """
    path = args.params
    arrays = _in_float64(path, _load_npz(path))
    known = r"d?[Wb][1-9][0-9]*|D[1-9][0-9]*|X|Y|J|loss"
    unknown = sorted(k for k in arrays if not re.fullmatch(known, k))
    if unknown:
        raise ValueError(
            f"{path}: unexpected array(s) {', '.join(unknown)}; expected "
            "W1, b1, ... with optional dW1, db1, ..., X, Y, J (your loss), D1, D2, ... "
            "(your dropout masks)"
        )
    n_layers = sum(1 for k in arrays if re.fullmatch(r"W[0-9]+", k))
    sizes = []
    for u in range(1, n_layers + 1):
        weight = arrays.get(f"W{u}")
        if weight is None:
            raise ValueError(f"{path} has no W{u}: weights must be numbered W1, W2, ...")
        if weight.ndim != 2:
            order = "(n_in, n_out)" if args.weights == "in_out" else "(n_out, n_in)"
            raise ValueError(f"W{u} must be a 2-D {order} array; got shape {weight.shape}")
        if args.weights == "in_out":
            weight = weight.T
        sizes = sizes or [weight.shape[1]]
        if weight.shape[1] != sizes[-1]:
            shown = weight.T.shape if args.weights == "in_out" else weight.shape
            raise ValueError(
                f"W{u} has shape {shown}; expected ({weight.shape[0]}, "
                f"{sizes[-1]}): layer {u - 1} has {sizes[-1]} units" + _other_layout(args, arrays)
            )
        sizes.append(weight.shape[0])
    if not sizes:
        raise ValueError(f"{path} holds no weights W1, W2, ...")
    net = _network(args, sizes)
    params = {k: v for k, v in arrays.items() if re.fullmatch(r"[Wb][0-9]+", k)}
    masks = _dropout_masks(args, arrays, len(sizes) - 2)
    grads = {k: v for k, v in arrays.items() if k.startswith("d")} or None
    X, Y = arrays.get("X"), arrays.get("Y")
    drawn = [name for name, array in (("X", X), ("Y", Y)) if array is None]
    has_loss = "J" in arrays or "loss" in arrays
    yours = " and ".join(w for w, held in (("loss", has_loss), ("gradients", grads)) if held)
    if drawn and has_loss:
        raise ValueError(
            f"{path} holds your {yours} without {' and '.join(drawn)}: add the batch they were "
            "computed on, or a drawn batch would be checked against them"
        )
    if drawn and grads is not None and (args.batch is None or args.seed is None):
        raise ValueError(
            f"{path} holds your {yours} without {' and '.join(drawn)}: add the batch they were "
            "computed on, or pass --batch and --seed to check them on a batch drawn at random"
        )
    if drawn:
        columns = args.layout == "columns"
        known = X if X is not None else Y
        axis = 1 if columns and known is not None and known.ndim == 2 else 0
        if known is not None and known.ndim == 0:
            raise ValueError(f"{drawn[0] == 'X' and 'Y' or 'X'} in {path} is a scalar, not a batch")
        batch = _batch(args) if known is None else known.shape[axis]
        X_new, Y_new = random_batch(net, batch, _seed(args))
        X_new, Y_new = (X_new.T, Y_new.T) if columns else (X_new, Y_new)
        X, Y = (X_new if X is None else X), (Y_new if Y is None else Y)
    if "J" in arrays and "loss" in arrays:
        raise ValueError(f"{path} holds both J and loss: give your loss once")
    loss = arrays.get("J", arrays.get("loss"))
    return net, params, grads, X, Y, loss, masks, drawn


def _dropout_masks(args, arrays, n_hidden):
    """Return the user's 0/1 dropout masks ``D1, D2, ...`` as a list, or ``None`` without any."""
    given = sorted((k for k in arrays if re.fullmatch(r"D[0-9]+", k)), key=lambda k: int(k[1:]))
    if not given:
        return None
    beyond = [k for k in given if int(k[1:]) > n_hidden]
    if beyond:
        raise ValueError(
            f"{args.params} holds dropout mask(s) {', '.join(beyond)}, but the network has "
            f"{n_hidden} hidden layer(s)"
        )
    return [arrays.get(f"D{u}") for u in range(1, n_hidden + 1)]


def _other_layout(args, arrays):
    """Say so when the weights chain up in the other layout, (n_out, n_in) or (n_in, n_out)."""
    names = sorted((k for k in arrays if re.fullmatch(r"W[0-9]+", k)), key=lambda k: int(k[1:]))
    weights = [arrays[k] for k in names]
    if any(w.ndim != 2 for w in weights):
        return ""
    shapes = [w.shape if args.weights == "in_out" else w.T.shape for w in weights]
    if all(after[1] == before[0] for before, after in zip(shapes, shapes[1:], strict=False)):
        other = "out_in" if args.weights == "in_out" else "in_out"
        looks = "(n_out, n_in)" if other == "out_in" else "(n_in, n_out)"
        return f"; your weights look {looks}: pass --weights {other}"
    return ""


def _batch(args):
    return args.default_batch if args.batch is None else args.batch


def _seed(args):
    return 0 if args.seed is None else args.seed


def _network(args, sizes):
    return MLP(
        sizes,
        hidden=_hidden(args.hidden),
        output=args.output,
        loss=args.loss,
        l2=args.l2,
        dropout=None if args.dropout is None else _hidden(args.dropout),
        reduction=args.reduction,
        weights=args.weights,
    )


COMPILING = (
    "fastgrad: compiling the kernels (once: they are cached on disk for later runs; "
    "15 s or more on two cores, some more for each new kind of check)"
)


class CompileWatch(numba_event.Listener):
    """Say once on stderr that numba is compiling, and time what it spends there.

    numba announces a compilation only when its disk cache misses, so a run
    whose kernels are cached prints nothing. Compilations nest (a kernel
    compiles the functions it calls): only the outermost ones are timed.
    """

    def __init__(self, stream=None):
        self.stream = stream
        self.seconds = 0.0
        self.said = False
        self._depth = 0
        self._started = 0.0

    def announce(self):
        """Say, once, that the kernels are being compiled."""
        if not self.said:
            print(COMPILING, file=self.stream or sys.stderr, flush=True)
            self.said = True

    def on_start(self, event):
        """Numba starts compiling a function: say so once, and start the clock if outermost."""
        if self._depth == 0:
            self.announce()
            self._started = time.perf_counter()
        self._depth += 1

    def on_end(self, event):
        """Numba is done with a function: stop the clock if it was the outermost."""
        self._depth -= 1
        if self._depth == 0:
            self.seconds += time.perf_counter() - self._started


def exit_status(verdict):
    """Return the exit status of a check's verdict: 0 passed, 1 failed, 3 inconclusive."""
    if verdict.passed:
        return 0
    return 1 if verdict.failed else INCONCLUSIVE


@contextlib.contextmanager
def _cluster(args):
    """Yield the Dask client of ``--scheduler``/``--workers``, or None.

    A scheduler that cannot be reached is bad input (:class:`UsageError`).
    """
    if args.scheduler is None and args.workers is None:
        yield None
        return
    from . import distributed

    with contextlib.ExitStack() as stack:
        try:
            client = stack.enter_context(
                distributed.connect(scheduler=args.scheduler, workers=args.workers)
            )
        except ValueError as exc:
            if args.scheduler is None:
                raise
            raise UsageError(f"--scheduler: {exc}") from None
        yield client


def _check_cluster(args):
    """Refuse what :func:`_cluster` would refuse, before any work."""
    if args.scheduler is None and args.workers is None:
        return
    if args.threads is not None:
        raise ValueError("--threads applies to a local check; Dask workers use their own threads")
    from . import distributed

    try:
        distributed.import_distributed()
    except ImportError as exc:
        option = "--scheduler" if args.scheduler is not None else "--workers"
        raise ValueError(f"{option}: {exc}") from None


def prepare_check(args):
    """Validate everything ``fastgrad check`` was given; return the arguments of the check.

    Every ``ValueError``/``TypeError`` raised here is bad input.
    """
    _check_cluster(args)
    drawn = []
    if args.params:
        if args.init:
            raise ValueError("--init does not apply to --params: the weights come from the file")
        net, params, grads, X, Y, loss, masks, drawn = _from_params(args)
    else:
        net = _network(args, args.sizes or [784, 128, 64, 10])
        specs = _init_specs(args.init or "he_normal")
        if len(specs) != 1:
            raise ValueError(f"check takes one initializer; got --init {args.init}")
        [(name, options)] = specs
        params = net.init(name, seed=_seed(args), **options)
        X, Y = random_batch(net, _batch(args), _seed(args))
        grads = loss = masks = None
    if args.mode == "full" and args.k is not None:
        raise ValueError("--k applies to --mode sample (entries) or directional (directions)")
    options = {
        "mode": args.mode,
        "k": args.k,
        "seed": _seed(args),
        "threads": args.threads,
        "layout": args.layout,
        "loss": loss,
        "dropout_masks": masks,
    }
    if args.thresholds is not None:
        options["thresholds"] = Thresholds.coerce(args.thresholds)
    if args.epsilon is not None:
        options["epsilon"] = check_epsilon(args.epsilon)
    # what check() would refuse, refused here: the shapes and values of every array
    net.workspace(params, X, Y, args.layout, masks)
    if grads is not None:
        net.packing.pack(grads, prefix="d", what="grads")
    if loss is not None:
        user_loss(loss)
    return net, params, grads, X, Y, options, drawn


def compile_ahead(args):
    """On a first-ever check, start compiling the finite-difference kernel in a child process.

    Returns the child (:class:`fastgrad._precompile.Child`) or None: none
    for a directional or a distributed check (the kernel runs elsewhere or
    another one does), when the kernel is cached already, or on one core.
    """
    if args.mode == "directional" or args.scheduler is not None or args.workers is not None:
        return None
    signature = kernel_signature(full=args.mode == "full")
    return _precompile.start(finite_diff.centered_differences, signature)


def run_check(args):
    """Run ``fastgrad check``; return the exit status."""
    child = compile_ahead(args)
    try:
        return _run_check(args, child)
    finally:
        _precompile.stop_all()


def _run_check(args, child):
    # kernels compile on first use, in the validation's forward pass already
    watch = CompileWatch()
    with numba_event.install_listener("numba:compile", watch):
        if child is not None:
            watch.announce()
        net, params, grads, X, Y, options, drawn = prepare_check(args)
        args.prepared = True
        entries = net.n_params if args.mode == "full" else 0
        if args.mode == "sample":
            entries = min(net.n_params, len(net.param_names) * (args.k or DEFAULT_SAMPLES))
        # a progress callback makes check() split the kernel into ~100 calls: only when long
        long = reports_progress(entries, np.shape(X)[0 if args.layout == "rows" else 1])
        show_bar = long and not (args.quiet or args.json) and sys.stderr.isatty()
        before = watch.seconds
        with _cluster(args) as client, _terminal.progress_bar(show_bar) as bar:
            started = time.perf_counter()
            report = check(net, params, X, Y, grads, progress=bar, client=client, **options)
            took = time.perf_counter() - started
    # the first run in a new environment compiles, in check() and as its report is built,
    # and waits there for the kernel a child process compiled: the check's time is the rest
    waited = child.waited if child is not None else 0.0
    report.details["compile_s"] = watch.seconds + waited
    if watch.seconds + waited:
        report.seconds = max(took - (watch.seconds - before) - waited, 0.0)
    note = ""
    if drawn:
        batch = int(np.shape(X)[0 if args.layout == "rows" else 1])
        report.details["drawn"] = {"arrays": drawn, "batch": batch, "seed": _seed(args)}
        note = (
            f"{' and '.join(drawn)} drawn at random (--batch {batch} --seed {_seed(args)}), "
            f"not read from {args.params}"
        )
    if args.json:
        print(report.to_json(indent=2))
    elif args.quiet:
        print(
            f"{report.verdict.name}: {overall_difference(report)}"
            + (" (partial: interrupted)" if report.partial else "")
            + (f" ({note})" if note else "")
        )
    else:
        if note:
            print(f"note: {note}")
        if not (sys.stdout.isatty() and _terminal.print_report(report)):
            print(report)
    return exit_status(report.verdict)


def prepare_diagnose(args):
    """Validate everything ``fastgrad diagnose`` was given; return ``(sizes, inits)``."""
    if args.depth is not None:
        sizes = [args.width] * (args.depth + 1) + [args.outputs]
    else:
        sizes = args.sizes or [784, 256, 256, 256, 10]
    MLP(sizes, hidden=_hidden(args.hidden), output=args.output, loss=args.loss)
    inits = _init_specs(args.init, std=args.std, gain=args.gain)
    for name, options in inits:
        initializers.get(name)((2, 2), rng=0, **options)  # refuses bad options, cheaply
    if args.plot:
        _check_plot_path(args.plot)
    return sizes, inits


def _check_plot_path(path):
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise ValueError(f"--plot {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"--plot {path}: folder {folder} is not writable")
    suffix = Path(path).suffix.lower().lstrip(".")
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install 'fastgrad[plot]'") from None
    formats = Figure().canvas.get_supported_filetypes()
    if suffix not in formats:
        raise ValueError(
            f"--plot {path}: cannot draw a .{suffix} file; use one of "
            f"{', '.join('.' + f for f in sorted(formats))}"
        )


def run_diagnose(args):
    """Run ``fastgrad diagnose``; return the exit status."""
    sizes, inits = prepare_diagnose(args)
    args.prepared = True
    with numba_event.install_listener("numba:compile", CompileWatch()):
        result = diagnose(
            sizes,
            _hidden(args.hidden),
            inits,
            output=args.output,
            loss=args.loss,
            batch=_batch(args),
            seed=_seed(args),
        )
    print(json.dumps(result.to_dict(), indent=2) if args.json else result)
    if args.plot:
        try:
            result.plot(args.plot)
        except OSError as exc:  # the folder vanished or filled up since it was checked
            print(f"fastgrad: error: --plot {args.plot}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0


def _show_warnings(caught):
    """Print each distinct warning once, in one line, without a source line."""
    seen = set()
    for item in caught:
        text = f"fastgrad: warning: {item.message}"
        if text not in seen:
            seen.add(text)
            print(text, file=sys.stderr)


def _fail(message, as_json):
    """Print a one-line error (and ``{"error": ...}`` on stdout for ``--json``); return 2."""
    print(f"fastgrad: error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": message}))
    return 2


def _crashed(exc, as_json):
    """Keep stdout one JSON object for ``--json`` when fastgrad itself fails."""
    if as_json:
        print(json.dumps({"error": f"internal error: {type(exc).__name__}: {exc}"}))


@contextlib.contextmanager
def _noting_ctrl_c():
    """Note each Ctrl-C while the command runs; yield the list of notes.

    A Ctrl-C that lands in a ctypes callback of numba's compiler (llvmlite's
    object cache) is printed and dropped there, and the compile it broke can
    fail later with an unrelated error: the note tells such a failure from a bug.
    """
    pressed = []
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield pressed
        return

    def note(signum, frame):
        pressed.append(True)
        previous(signum, frame)

    signal.signal(signal.SIGINT, note)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupted(as_json):
    print("fastgrad: interrupted", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": "interrupted"}))
    return INTERRUPTED


def main(argv=None):
    """Run the command with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = _attach_negative_values(list(sys.argv[1:] if argv is None else argv))
    as_json = "--json" in argv
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return _fail(str(exc), as_json)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    args.prepared = False
    with warnings.catch_warnings(record=True) as caught, _noting_ctrl_c() as pressed:
        warnings.simplefilter("always")
        try:
            return args.run(args)
        except UsageError as exc:
            return _fail(str(exc), as_json)
        except (ValueError, TypeError) as exc:
            if not args.prepared:
                return _fail(str(exc), as_json)
            if pressed:  # a Ctrl-C dropped in numba's compiler, and what it broke
                return _interrupted(as_json)
            _crashed(exc, as_json)
            raise  # past validation: a bug, to be seen with its traceback
        except KeyboardInterrupt:
            return _interrupted(as_json)
        except BrokenPipeError:
            # the reader closed the pipe (``| head``): stop quietly
            with open(os.devnull, "w") as devnull:
                try:
                    os.dup2(devnull.fileno(), sys.stdout.fileno())
                except (OSError, ValueError):
                    pass
            return 1
        except Exception as exc:
            if pressed:
                return _interrupted(as_json)
            _crashed(exc, as_json)
            raise
        finally:
            _show_warnings(caught)


if __name__ == "__main__":  # python -m fastgrad.cli, the checkout's own command
    sys.exit(main())
