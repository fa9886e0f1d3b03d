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
- a network keeps a check's working arrays only when they total at most
  :data:`KEEP_BYTES`: the first request that would pass the limit makes
  the scratch let go of everything and keep nothing more, so that a
  larger check allocates and frees its arrays as it always has (its peak
  memory unchanged) and leaves nothing on the network;
- a scratch is never pickled with its network.
"""

import numpy as np

KEEP_BYTES = 16 << 20
"""Most bytes of working arrays a network keeps between checks (16 MiB).

A page fault costs about a microsecond per 4 KiB page written, 0.25-0.4 ms
per MiB: about a third of the check of 784-128-64-10 at batch 64, whose
working arrays take about 8 MiB (most of the series table is never
touched). A check whose arrays pass 16 MiB (a few hundred thousand
parameters and more) takes a quarter of a second or more, of which the
faults are about one percent. Kept arrays stay with the network until it
is garbage collected, and during a check they stay alive until it returns,
which adds at most this much to its peak memory."""


class Scratch:
    """Named working arrays, reused while their shape and type stay the same.

    Parameters
    ----------
    limit : int, default 0
        Most bytes kept in all. The first request that would pass it lets
        go of every kept array and sets the limit to 0 (:meth:`overflow`).
        With ``0`` nothing is kept: every request allocates a new array, as
        a check without a network's scratch does.

    Notes
    -----
    A reused array holds what the last check left in it: :meth:`empty`
    promises nothing about its contents, :meth:`zeros` zeroes it.

    :meth:`group` keeps, by name, a caller's structure of kept arrays (or of
    views of them), so that a check asks for it once rather than for each
    array; the groups are let go of with the arrays, so that a group found
    there holds arrays the scratch still keeps.
    """

    def __init__(self, limit=0):
        self.limit = int(limit)
        self._arrays = {}
        self._groups = {}
        self.nbytes = 0
        self.overflowed = False

    def empty(self, name, shape, dtype=np.float64):
        """Return the array ``name`` of ``shape`` and ``dtype``, its contents undefined.

        The kept one when it has that shape and type; else a new one, kept
        in its place when the limit allows (the old one is let go of).
        """
        if not isinstance(shape, tuple):
            shape = (int(shape),)
        array = self._arrays.get(name)
        # a check asks for a dozen arrays: the kept one is found without numpy's conversions
        if array is not None and array.shape == shape and array.dtype == dtype:
            return array
        return self._new(name, shape, dtype, np.empty)

    def zeros(self, name, shape, dtype=np.float64):
        """Return the array ``name`` as :meth:`empty` does, filled with zeros."""
        if not isinstance(shape, tuple):
            shape = (int(shape),)
        array = self._arrays.get(name)
        if array is not None and array.shape == shape and array.dtype == dtype:
            array.fill(0)
            return array
        # a new array of zeros comes from calloc: pages untouched until written
        return self._new(name, shape, dtype, np.zeros)

    def group(self, name, key, build):
        """Return the structure ``build()`` made the last time ``name`` was asked for with ``key``.

        ``build`` makes it from this scratch's arrays (:meth:`empty`,
        :meth:`zeros`); it is called again when ``key`` differs, when one
        of those arrays was replaced or let go of since, and always when
        the scratch keeps nothing. The structure comes back as it was left:
        the caller zeroes what needs zeroing.
        """
        kept = self._groups.get(name)
        if kept is not None and kept[0] == key:
            return kept[1]
        made = build()
        if self.limit:  # not passed while building (a pass lets go of everything)
            self._groups[name] = (key, made)
        return made

    def _new(self, name, shape, dtype, allocate):
        """Return a new array from ``allocate``, kept under ``name`` when the limit allows."""
        shape = tuple(int(n) for n in shape)
        old = self._arrays.pop(name, None)
        if old is not None:
            self.nbytes -= old.nbytes
            self._groups.clear()  # some may hold the old array
        array = allocate(shape, dtype=dtype)
        if self.nbytes + array.nbytes <= self.limit:
            self._arrays[name] = array
            self.nbytes += array.nbytes
        else:
            self.overflow()
        return array

    def overflow(self):
        """Let go of every kept array and keep none from now on (the limit was passed)."""
        self._arrays.clear()
        self._groups.clear()
        self.nbytes = self.limit = 0
        self.overflowed = True


def take(net):
    """Return ``net``'s scratch for one check: the one a finished check gave back, or a new one."""
    try:
        return net._scratches.pop()
    except IndexError:
        return Scratch(KEEP_BYTES)


def give_back(net, scratch):
    """Keep ``scratch`` on ``net`` for the next check (one is kept; an empty one is not).

    A scratch that passed its limit is empty: a network whose check needs
    more than :data:`KEEP_BYTES` keeps nothing.
    """
    if scratch.nbytes and not net._scratches:
        net._scratches.append(scratch)
