"""Compiled kernels: flat float64 arrays and integer codes in, arrays out.

Nothing here validates its input; the modules above ``kernels`` do that.
"""
