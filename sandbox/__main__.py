"""``python -m sandbox --host 127.0.0.1 --port 8001``: the provider simulators as their own process."""

from __future__ import annotations

import argparse
import os
import sys

from .guard import refusal_reason
from .seed import demo_summary, seed_demo
from .server import SandboxServer
from .state import Store


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--no-seed", action="store_true", help="start empty (no demo accounts or codes)")
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every provider call (benchmarks)")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    parser.add_argument("--lina-fail-threshold", type=int, default=5, help="failed calls before DENIED")
    parser.add_argument(
        "--lina-fail-window", type=float, default=60.0, help="seconds the failures are counted"
    )
    parser.add_argument("--lina-lockout", type=float, default=300.0, help="seconds DENIED lasts")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reason = refusal_reason(os.environ)
    if reason:
        print(f"The sandbox providers refuse to start: {reason}", file=sys.stderr)
        return 2
    store = Store(
        base_latency_ms=max(0, args.latency_ms),
        lina_defaults={
            "fail_threshold": args.lina_fail_threshold,
            "fail_window_seconds": args.lina_fail_window,
            "lockout_seconds": args.lina_lockout,
        },
    )
    if not args.no_seed:
        seed_demo(store)
    try:
        server = SandboxServer((args.host, args.port), store, quiet=args.quiet)
    except OSError as exc:
        print(f"The sandbox providers cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"Sandbox providers listening on {server.base_url}", flush=True)
    if not args.no_seed:
        print(demo_summary(server.base_url), flush=True)
    if args.latency_ms:
        print(f"Default latency: {args.latency_ms} ms per provider call", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
