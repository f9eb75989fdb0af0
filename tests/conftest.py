"""Hooks for the whole suite: ``--require-integration`` (see ``tests/ci_require.py``)."""

from __future__ import annotations

from ci_require import pytest_addoption, pytest_configure

__all__ = ["pytest_addoption", "pytest_configure"]
