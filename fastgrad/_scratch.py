"""Working arrays of a check, kept on the network from one check to the next.

A full check of a small network allocates a few megabytes of working arrays
(the transposed weights, the input tables, the series table, the line
setup's Jacobians, the kernel's kink widths). Freed after each check, the C
allocator hands them back to the system, and the next check pays a page
fault for every page it writes again: about a third of the check of a
784-128-64-10 network. A :class:`Scratch` keeps them instead: a check takes
the network's scratch (:func:`take`), asks it for each working array by name
and gives it back when it returns (:func:`give_back`).

Rules that keep this safe:

- only working arrays come from a scratch, never an array handed to the
  user (report fields, gradients) or kept by the report;
- a scratch serves one check at a time: :func:`take` pops it from the
  network's list (atomic under any threads), so a second check running at
  the same time on the same network gets a new one, and only one scratch
  is kept when both give theirs back;
- a scratch keeps at most :data:`KEEP_BYTES`: an array that would pass the
  limit is allocated as before and let go of with the check (a check that
  large takes seconds, and its page faults are a small part of it);
- a scratch is never pickled with its network.
"""

import numpy as np

KEEP_BYTES = 64 << 20
"""Most bytes of working arrays a network keeps between checks (64 MiB).

Page faults cost about a microsecond per 4 KiB page written, about 0.25 ms
per MiB; a check whose working arrays pass 64 MiB (a network of about a
million parameters and more) takes seconds, so that the faults of arrays
allocated afresh cost it well under one percent. Below the limit the
memory stays with the network until it is garbage collected."""


class Scratch:
    """Named working arrays, reused while their shape and type stay the same.

    Parameters
    ----------
    limit : int, default 0
        Most bytes kept in all. With ``0`` nothing is kept: every request
        allocates a new array, as a check without a network's scratch does.

    Notes
    -----
    A reused array holds what the last check left in it: :meth:`empty`
    promises nothing about its contents, :meth:`zeros` zeroes it.
    """

    def __init__(self, limit=0):
        self.limit = int(limit)
        self._arrays = {}
        self.nbytes = 0

    def empty(self, name, shape, dtype=np.float64):
        """Return the array ``name`` of ``shape`` and ``dtype``, its contents undefined.

        The kept one when it has that shape and type; else a new one, kept
        in its place when the limit allows (the old one is let go of).
        """
        return self._array(name, shape, dtype, np.empty)[0]

    def zeros(self, name, shape, dtype=np.float64):
        """Return the array ``name`` as :meth:`empty` does, filled with zeros."""
        array, reused = self._array(name, shape, dtype, np.zeros)
        if reused:
            array.fill(0)
        return array

    def _array(self, name, shape, dtype, allocate):
        """Return ``(array, reused)``: the kept array, or a new one from ``allocate``."""
        dtype = np.dtype(dtype)
        shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
        array = self._arrays.get(name)
        reused = array is not None and array.shape == shape and array.dtype == dtype
        if not reused:
            if array is not None:
                del self._arrays[name]
                self.nbytes -= array.nbytes
            # a new array of zeros comes from calloc: pages untouched until written
            array = allocate(shape, dtype=dtype)
            if self.nbytes + array.nbytes <= self.limit:
                self._arrays[name] = array
                self.nbytes += array.nbytes
        return array, reused


def take(net):
    """Return ``net``'s scratch for one check: the one a finished check gave back, or a new one."""
    try:
        return net._scratches.pop()
    except IndexError:
        return Scratch(KEEP_BYTES)


def give_back(net, scratch):
    """Keep ``scratch`` on ``net`` for the next check (one is kept; an empty one is not)."""
    if scratch.nbytes and not net._scratches:
        net._scratches.append(scratch)
