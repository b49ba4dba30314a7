"""Environments: traitors, taxation, market. See ``registry`` for names."""
