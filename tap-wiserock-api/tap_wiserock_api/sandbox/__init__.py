"""A local Supabase-compatible stand-in for the WiseRock API (tests, `make run`, benchmarks)."""

from tap_wiserock_api.sandbox.server import (
    SANDBOX_API_KEY,
    SANDBOX_EMAIL,
    SANDBOX_PASSWORD,
    Faults,
    Sandbox,
    SandboxHTTPServer,
)

__all__ = ["SANDBOX_API_KEY", "SANDBOX_EMAIL", "SANDBOX_PASSWORD", "Faults", "Sandbox", "SandboxHTTPServer"]
