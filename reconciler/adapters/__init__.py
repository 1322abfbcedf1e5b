"""Adapters: every I/O of convctl (files, YAML, state backends), translated into our types."""
