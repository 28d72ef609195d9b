"""Reconciliation tests: the in-memory orchestrator (tests/support/memory_env.py) against the local
WeChat stand-in over real HTTP (tests/support/standin.py)."""

from tests.support.standin import standin, standin_config  # noqa: F401 (fixtures)
