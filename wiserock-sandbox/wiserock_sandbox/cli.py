"""`wiserock-sandbox`: serve the sandbox until interrupted."""

from __future__ import annotations

import argparse
import pathlib
import signal
import sys

from wiserock_sandbox.schema import load_definitions
from wiserock_sandbox.server import SandboxHTTPServer
from wiserock_sandbox.state import NOTE_KEYS, Faults, Sandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="wiserock-sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--users", type=int, default=2500)
    parser.add_argument("--notes", type=int, default=12000)
    parser.add_argument("--note-key", choices=NOTE_KEYS, default="bigint",
                        help="the sample note table's key type (uuid: random v4 uuids, the same for a seed)")
    parser.add_argument("--max-rows", type=int, default=1000)
    parser.add_argument("--token-lifetime", type=int, default=3600, help="seconds")
    parser.add_argument("--rate-limit-every", type=int, default=0)
    parser.add_argument("--error-every", type=int, default=0)
    parser.add_argument("--error-status", type=int, default=503)
    parser.add_argument("--drop-every", type=int, default=0)
    parser.add_argument("--max-in-flight", type=int, default=0,
                        help="answer a read 429 with Retry-After while this many are being served (0: no limit)")
    parser.add_argument("--retry-after", type=int, default=1, help="seconds, in the Retry-After of 429 and 503 answers")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="milliseconds slept before every answer, as a remote project's round trip")
    parser.add_argument("--tables", type=pathlib.Path,
                        help="serve the tables of this definition file (JSON: columns, types, keys, rows) "
                             "instead of the generated user/note sample")
    parser.add_argument("--url-file", type=pathlib.Path, help="write the base URL here once listening")
    args = parser.parse_args(argv)

    faults = Faults(max_rows=args.max_rows, token_lifetime=args.token_lifetime,
                    rate_limit_every=args.rate_limit_every, error_every=args.error_every,
                    error_status=args.error_status, drop_every=args.drop_every,
                    latency=args.latency_ms / 1000, max_in_flight=args.max_in_flight, retry_after=args.retry_after)
    tables = load_definitions(args.tables) if args.tables else None
    sandbox = Sandbox(seed=args.seed, users=args.users, notes=args.notes, faults=faults, tables=tables,
                      note_key=args.note_key)
    server = SandboxHTTPServer(sandbox, args.host, args.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serving = (f"tables of {args.tables}" if args.tables
               else f"{args.users} users, {args.notes} notes keyed by {args.note_key}, seed {args.seed}")
    print(f"wiserock-sandbox listening on {server.url} ({serving}, latency {args.latency_ms:g} ms)", flush=True)
    if args.url_file:
        args.url_file.write_text(server.url)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
