"""fastgrad: fast, exact gradient checking for dense neural networks."""

__version__ = "0.1.0"
