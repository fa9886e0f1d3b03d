"""The kernels' named structures and the scratch their callers allocate."""

import numpy as np
import pytest

from fastgrad.kernels.structures import LaneScratch, lane_buffers, lane_scratch


@pytest.mark.parametrize("lanes, width", [(1, 1), (1, 5), (3, 7)])
def test_lane_scratch_on_buffers_is_the_allocated_one_in_views_that_never_overlap(lanes, width):
    allocated = lane_scratch(lanes, width, 10, 8, 4)
    buffers = tuple(np.zeros(n, dtype=t) for n, t in lane_buffers(lanes, width, 10, 8, 4))
    views = lane_scratch(lanes, width, 10, 8, 4, buffers)
    assert isinstance(views, LaneScratch)
    for name, a, v in zip(LaneScratch._fields, allocated, views, strict=True):
        assert (a.shape, a.dtype) == (v.shape, v.dtype), name
        assert v.flags.c_contiguous and v.flags.writeable and not v.any()
        assert any(np.shares_memory(v, b) for b in buffers), name
    # every element of every buffer belongs to exactly one view
    for buffer in buffers:
        seen = np.zeros(buffer.size, dtype=np.int64)
        for v in views:
            if np.shares_memory(v, buffer):
                start = v.__array_interface__["data"][0] - buffer.__array_interface__["data"][0]
                seen[start // buffer.itemsize :][: v.size] += 1
        assert (seen == 1).all()
