"""Shared pytest fixtures: the project root on sys.path, built tools."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from pclib import build  # noqa: E402
from pclib.common import ROOT, tool  # noqa: E402


@pytest.fixture(scope="session")
def built():
    """Builds the default preset once per session; returns a tool() lookup."""
    build.ensure_built("default", quiet=True)
    return lambda name: tool("default", name)


@pytest.fixture(scope="session")
def vhdxtool(built):
    return built("vhdxtool")


@pytest.fixture
def root():
    return ROOT
