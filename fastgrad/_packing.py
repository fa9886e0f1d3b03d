"""Between a dict of named tensors and one flat float64 vector.

A network's parameters travel as a dict ``{"W1": ..., "b1": ..., ...}`` at
the API and as one flat vector ``theta`` inside the kernels, ``W1`` (row-major)
then ``b1`` then ``W2``, and so on. :class:`Packing` is the only place that
knows the offsets.
"""

import os
import sys
import warnings

import numpy as np

from .kernels import dense


class PrecisionWarning(UserWarning):
    """Input arrived in less than float64 precision and was converted."""


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _caller_level():
    """Return the ``stacklevel`` that points a warning at the first frame outside fastgrad."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level


_FLOAT64 = np.dtype(np.float64)


def as_float64(name, value, *, copy=False):
    """Return ``value`` as a C-contiguous float64 array, refusing non-numbers.

    float32 and float16 input is converted with a :class:`PrecisionWarning`;
    integer and boolean input is converted silently.
    """
    if (
        not copy
        and type(value) is np.ndarray
        and value.dtype is _FLOAT64
        and value.flags.c_contiguous
    ):
        return value  # what numpy.asarray returns for it, without its conversions
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except Exception as exc:  # noqa: BLE001 - any failure is the user's input
            raise TypeError(
                f"{name} must be an array of numbers; got {type(value).__name__}"
            ) from exc
    kind = value.dtype.kind
    if kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers; got dtype {value.dtype}")
    if kind == "f" and value.dtype.itemsize < 8:
        warnings.warn(
            f"{name} is {value.dtype}; fastgrad computes in float64. Expect it to agree "
            f"with a float64 computation only to about {np.finfo(value.dtype).eps:.0e} relative.",
            PrecisionWarning,
            stacklevel=_caller_level(),
        )
    if kind == "f" and value.dtype.itemsize > 8:
        raise TypeError(f"{name} is {value.dtype}; fastgrad computes in float64, pass float64")
    if copy:
        return np.array(value, dtype=np.float64, order="C")
    # not ascontiguousarray: it turns a 0-d array into shape (1,), hiding a scalar
    return np.asarray(value, dtype=np.float64, order="C")


SMALL_FINITE_TEST = 4096
"""Parameters up to which :meth:`Packing.layers` tests all tensors as one copy.

Copying a few thousand floats costs less than a compiled call per tensor.
"""


def require_finite(name, array):
    """Raise ``ValueError`` if ``array`` holds NaN or Inf, naming the first one.

    One pass and no temporary when all is well: a test of every entry's
    exponent bits for a C-contiguous float64 array
    (:func:`~fastgrad.kernels.dense.any_nonfinite`), else the sum, which a
    NaN or Inf makes non-finite (a sum that only overflows sends finite
    values through the entry-by-entry search, which passes them).
    """
    if array.dtype == np.float64 and array.flags.c_contiguous:
        if not dense.any_nonfinite(array.reshape(-1)):
            return
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.add.reduce(array, axis=None)):
                return
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        where = first[0] if len(first) == 1 else first
        raise ValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or Inf); "
            f"the first is at index {where}"
        )


def require_choice(name, value, choices, described):
    """Return ``value`` if it is one of the strings ``choices``.

    Otherwise raise ``ValueError``: "``name`` must be ``described``; got ``value``".
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be {described}; got {value!r}")
    return value


class Packing:
    """Offsets of each named tensor of a dense network in the flat vector.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, input first.
    weights : {"out_in", "in_out"}, default "out_in"
        How the user stores ``Wl``: ``(n_out, n_in)``, the layout of ``theta``,
        or ``(n_in, n_out)``, transposed on the way in and out. :attr:`shapes`
        are always ``theta``'s; :meth:`user_shape` gives the user's.

    Attributes
    ----------
    bounds : int64 ndarray
        The offset of each tensor in :attr:`names` order, then :attr:`size`.
    """

    def __init__(self, sizes, weights="out_in"):
        self.sizes = tuple(int(s) for s in sizes)
        self.weights = weights
        self.transposed = weights == "in_out"
        self.names = []
        self.shapes = {}
        self.offsets = {}
        self._slices = {}
        self._layers = {}
        self._views = {}  # per key prefix: (key, name, slice, shape, transposed) of unpack
        # per key prefix: ((key, name, user shape, a bias's accepted shapes), ...) and the keys
        self._entries = {}
        offset = 0
        for layer in range(1, len(self.sizes)):
            n_in, n_out = self.sizes[layer - 1], self.sizes[layer]
            for name, shape in ((f"W{layer}", (n_out, n_in)), (f"b{layer}", (n_out,))):
                self.names.append(name)
                self.shapes[name] = shape
                self.offsets[name] = offset
                self._slices[name] = slice(offset, offset + int(np.prod(shape)))
                self._layers[name] = layer
                offset += int(np.prod(shape))
        self.size = offset
        self._starts = np.array([self.offsets[name] for name in self.names], dtype=np.int64)
        self.bounds = np.append(self._starts, self.size)

    def slice(self, name):
        """Return the slice of ``theta`` that holds tensor ``name``."""
        return self._slices[name]

    def user_shape(self, name):
        """Return the shape the user gives tensor ``name`` in (weights transposed for in_out)."""
        shape = self.shapes[name]
        return shape[::-1] if self.transposed and name.startswith("W") else shape

    def user_index(self, name, index):
        """Return a position in ``theta``'s layout of ``name`` as the user indexes it."""
        return tuple(index[::-1]) if self.transposed and name.startswith("W") else tuple(index)

    def layer(self, name):
        """Return the layer (1 for ``W1`` and ``b1``) that tensor ``name`` belongs to."""
        return self._layers[name]

    def is_bias(self, name):
        """Whether tensor ``name`` is a bias (else a weight)."""
        return name == f"b{self.layer(name)}"

    def tensor_at(self, flat):
        """Return the name of the tensor that holds flat index ``flat`` of ``theta``."""
        if not 0 <= flat < self.size:
            raise IndexError(f"flat index {flat} is outside 0..{self.size - 1}")
        return self.names[int(np.searchsorted(self._starts, flat, side="right")) - 1]

    def positions(self, entries):
        """Return ``(layer, unit, column)`` of flat indices ``entries``, as int64 arrays.

        ``unit`` is the output unit (row of ``W``, entry of ``b``); ``column``
        the input, ``sizes[layer - 1]`` for a bias.
        """
        entries = np.asarray(entries, dtype=np.int64)
        tensor = np.searchsorted(self._starts, entries, side="right") - 1
        layers = np.array([self._layers[name] for name in self.names], dtype=np.int64)[tensor]
        bias = np.array([self.is_bias(name) for name in self.names])[tensor]
        local = entries - self._starts[tensor]
        n_in = np.asarray(self.sizes, dtype=np.int64)[layers - 1]
        unit = np.where(bias, local, local // n_in)
        column = np.where(bias, n_in, local % n_in)
        return layers, unit, column

    def expected(self, name):
        """Describe the shape expected for ``name``, for error messages."""
        shape = self.shapes[name]
        if name.startswith("W"):
            order = "(n_in, n_out)" if self.transposed else "(n_out, n_in)"
            return (
                f"{self.user_shape(name)} {order} for layer {self.layer(name)} from {shape[1]} to "
                f"{shape[0]} units"
            )
        return f"({shape[0]},), ({shape[0]}, 1) or (1, {shape[0]})"

    def _other_layout(self, params, prefix):
        """Say so when every weight has the shape of the other weight layout."""
        other = "out_in" if self.transposed else "in_out"
        names = [n for n in self.names if n.startswith("W")]
        shapes = [np.shape(params[prefix + n]) for n in names]
        if all(s == self.user_shape(n)[::-1] for s, n in zip(shapes, names, strict=True)):
            looks = "(n_out, n_in)" if self.transposed else "(n_in, n_out), the X @ W convention"
            return (
                f"; your weights look {looks}: pass W.T (and dW.T), or MLP(..., weights={other!r})"
            )
        return ""

    def _check_keys(self, params, prefix, what):
        """Raise unless ``params`` is a dict holding exactly this network's tensors."""
        if not hasattr(params, "keys"):
            raise TypeError(f"{what} must be a dict of arrays; got {type(params).__name__}")
        wanted = [prefix + name for name in self.names]
        missing = [key for key in wanted if key not in params]
        extra = sorted(str(key) for key in params.keys() if key not in wanted)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if extra:
                parts.append(f"unexpected {', '.join(extra)}")
            raise ValueError(
                f"{what} does not match a network of sizes {list(self.sizes)}: "
                f"{'; '.join(parts)} (expected keys {', '.join(wanted)})"
            )

    def _bias_forms(self, name):
        """Return the shapes a bias may come in, ``(n,)``, ``(n, 1)``, ``(1, n)`` (none for W)."""
        if not name.startswith("b"):
            return ()
        n = self.shapes[name][0]
        return ((n,), (n, 1), (1, n))

    def _validated(self, params, prefix, what):
        """Return ``({name: float64 array as the user lays it out}, bias_shapes)``.

        Each array is the user's own where it is already float64 and
        contiguous (no copy), else a converted copy.
        """
        found = self._entries.get(prefix)
        if found is None:
            entries = tuple(
                (
                    prefix + name,
                    name,
                    self.user_shape(name),
                    self._bias_forms(name),
                )
                for name in self.names
            )
            found = self._entries[prefix] = (entries, frozenset(entry[0] for entry in entries))
        entries, keys = found
        # a dict of exactly these keys needs no further look (a call's common case)
        if not (type(params) is dict and params.keys() == keys):
            self._check_keys(params, prefix, what)
        arrays = {}
        bias_shapes = {}
        for key, name, shape, bias_forms in entries:
            array = as_float64(key, params[key])
            if array.shape in bias_forms:
                bias_shapes[name] = array.shape
            elif array.shape != shape:
                raise ValueError(
                    f"{key} has shape {array.shape}; expected {self.expected(name)}"
                    + (self._other_layout(params, prefix) if name.startswith("W") else "")
                )
            arrays[name] = array
        return arrays, bias_shapes

    def layers(self, params, *, prefix="", what="params"):
        """Validate a dict of tensors and return each layer's weight and bias as float64 views.

        Nothing is copied where the user's arrays are already float64 and
        C-contiguous (``out_in`` weights): the passes of a network then read
        them where they are. ``in_out`` weights are copied transposed, into
        ``theta``'s layout.

        Parameters
        ----------
        params : dict
            ``{prefix + "W1": array, prefix + "b1": array, ...}``.
        prefix, what : str
            As for :meth:`pack`.

        Returns
        -------
        layers : tuple
            ``layers[u] = (W, b)`` for ``u = 1 .. L`` (``layers[0]`` is
            None): ``W`` the ``(n_out, n_in)`` weight in ``theta``'s layout
            (a transposed view for ``in_out``), ``b`` the ``(n_out,)`` bias.
        bias_shapes : dict
            The shape each bias was given in, ``(n,)``, ``(n, 1)`` or ``(1, n)``.

        Raises
        ------
        TypeError, ValueError
            As :meth:`pack`, with the same messages.
        """
        layers, bias_shapes, _ = self.layers_and_flat(params, prefix=prefix, what=what)
        return layers, bias_shapes

    def layers_and_flat(self, params, *, prefix="", what="params"):
        """Return :meth:`layers`' ``(layers, bias_shapes)`` and the flat copy it made, if any.

        A network of at most :data:`SMALL_FINITE_TEST` parameters is tested
        finite on one flat copy of its tensors; with ``out_in`` weights that
        copy is ``theta`` (the packing's order and layout), returned third so
        that it need not be made again. ``None`` otherwise.
        """
        arrays, bias_shapes = self._validated(params, prefix, what)
        flat = None
        # a small network's tensors tested in one pass over a copy rather than one call
        # each; the tensor-by-tensor test names the first non-finite one
        if self.size <= SMALL_FINITE_TEST:
            flat = np.concatenate([arrays[name].reshape(-1) for name in self.names])
        if flat is None or dense.any_nonfinite(flat):
            for name in self.names:
                require_finite(prefix + name, arrays[name])
        out = [None]
        names = self.names  # W1, b1, W2, b2, ...: each layer's pair in turn
        for w_name, b_name in zip(names[0::2], names[1::2], strict=True):
            weight = arrays[w_name]
            if self.transposed:
                # theta's layout, so that every product is the same BLAS call, to the bit
                weight = np.ascontiguousarray(weight.T)
            out.append((weight, arrays[b_name].reshape(-1)))
        return tuple(out), bias_shapes, (None if self.transposed else flat)

    def pack(self, params, *, prefix="", what="params"):
        """Validate a dict of tensors and return ``(theta, bias_shapes)``.

        Parameters
        ----------
        params : dict
            ``{prefix + "W1": array, prefix + "b1": array, ...}``.
        prefix : str
            ``""`` for parameters, ``"d"`` for gradients.
        what : str
            How to call the dict in error messages.

        Returns
        -------
        theta : ndarray
            A new flat float64 vector.
        bias_shapes : dict
            The shape each bias was given in, ``(n,)``, ``(n, 1)`` or ``(1, n)``.
        """
        arrays, bias_shapes = self._validated(params, prefix, what)
        for name in self.names:
            require_finite(prefix + name, arrays[name])
        theta = np.empty(self.size)
        for name in self.names:
            array = arrays[name]
            if self.transposed and name.startswith("W"):
                array = array.T
            theta[self.slice(name)].reshape(array.shape)[...] = array
        return theta, bias_shapes

    def unpack(self, theta, bias_shapes=None, *, prefix=""):
        """Return a dict of per-tensor views into ``theta``.

        Biases come back in the shape given in ``bias_shapes`` (``(n,)`` when
        absent); weights in the user's layout (a transposed view for ``in_out``).
        """
        bias_shapes = bias_shapes or {}
        views = self._views.get(prefix)
        if views is None:
            views = self._views[prefix] = tuple(
                (
                    prefix + name,
                    name,
                    self._slices[name],
                    self.shapes[name],
                    self.transposed and name.startswith("W"),
                )
                for name in self.names
            )
        out = {}
        for key, name, part, shape, transposed in views:
            view = theta[part].reshape(bias_shapes.get(name, shape))
            out[key] = view.T if transposed else view
        return out
