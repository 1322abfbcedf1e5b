"""The command line: a thin click group, one module per command, output through ``App``."""
