"""A local Supabase-compatible stand-in for the WiseRock API (tests, `make run`, benchmarks)."""

from wiserock_sandbox.schema import Column, TableDef
from wiserock_sandbox.server import SandboxHTTPServer
from wiserock_sandbox.state import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD, SANDBOX_SERVICE_KEY, Faults, Sandbox

__all__ = ["SANDBOX_API_KEY", "SANDBOX_EMAIL", "SANDBOX_PASSWORD", "SANDBOX_SERVICE_KEY", "Column", "Faults", "Sandbox",
           "SandboxHTTPServer", "TableDef"]
