"""A sandbox per test, served on a free local port."""

from wiserock_sandbox.testing import start_sandbox  # noqa: F401 - a fixture, found by name
