"""hieros-pl: the Hieros agent (hierarchical imagination on S5 world models) on Lightning."""

__version__ = "0.1.0"
