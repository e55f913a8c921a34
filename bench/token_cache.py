"""What the device-code token cache saves, measured on the sandbox identity endpoint (real msal,
HTTPS on 127.0.0.1): a fresh process that finds the cache versus one that must sign in, the cost
of ``DeviceCodeAuth.status`` (a local file read), and how many refreshes K threads whose 401s
interleave cost (one, by design).

Usage: python bench/token_cache.py [--runs 3] [--threads 8]. Prints a Markdown table. The
sandbox approves device codes at once, so the sign-in time here is MSAL's own polling (its
``interval`` is 1 s) plus requests; a person typing a code takes far longer.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from auth_fixtures import PUBLIC_ID, TENANT, AuthSandbox, start_auth_sandbox  # noqa: E402
from servers import LoopbackHTTP, QuietHandler  # noqa: E402

from hdiaks_widgets.auth import DeviceCodeAuth  # noqa: E402

_CHILD = """
import sys, requests
from hdiaks_widgets.auth import DeviceCodeAuth
host, ca, whoami = sys.argv[1:4]
auth = DeviceCodeAuth(tenant_id=%r, client_id=%r, authority_host=host, verify=ca)
auth.sign_in(timeout=60)
assert requests.get(whoami, auth=auth, verify=ca, timeout=10).status_code == 200
""" % (TENANT, PUBLIC_ID)  # noqa: UP031 - a program text, not a message


def _child_seconds(sb: AuthSandbox, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _CHILD, sb.authority_host, sb.ca_pem, sb.whoami_url],
                   check=True, env=env, capture_output=True, timeout=120)  # fmt: skip
    return time.perf_counter() - start


def _interleaved_refreshes(sb: AuthSandbox, threads: int) -> tuple[int, int]:
    """(refresh grants, final 200s) for ``threads`` requests whose 401s are in flight together."""
    auth = DeviceCodeAuth(tenant_id=TENANT, client_id=PUBLIC_ID, authority_host=sb.authority_host, verify=sb.ca_pem)
    auth.sign_in(timeout=60)
    barrier = threading.Barrier(threads, timeout=30)
    seen: set[str] = set()
    lock = threading.Lock()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            with lock:
                first = self.path not in seen
                seen.add(self.path)
            if first:
                barrier.wait()
            self.reply(401 if first else 200, b"{}")

    handler: type[BaseHTTPRequestHandler] = Handler
    statuses: list[int] = []
    before = sb.stats()["refresh_token"]
    with LoopbackHTTP(handler) as server:
        import requests

        def get(i: int) -> None:
            statuses.append(requests.get(f"{server.url}/{i}", auth=auth, timeout=30).status_code)

        workers = [threading.Thread(target=get, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
    return sb.stats()["refresh_token"] - before, statuses.count(200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sb = start_auth_sandbox(Path(tmp) / "auth")
        try:
            cache = Path(tmp) / "cache"
            env = {**os.environ, "HDIAKS_TOKEN_CACHE_DIR": str(cache)}
            os.environ["HDIAKS_TOKEN_CACHE_DIR"] = str(cache)
            _child_seconds(sb, env)  # the first sign-in fills the cache
            flows = sb.stats()["devicecode_requests"]
            cached = [_child_seconds(sb, env) for _ in range(args.runs)]
            cached_flows = sb.stats()["devicecode_requests"] - flows
            fresh = [_child_seconds(sb, {**env, "HDIAKS_TOKEN_CACHE": "memory"}) for _ in range(args.runs)]
            auth = DeviceCodeAuth(tenant_id=TENANT, client_id=PUBLIC_ID, authority_host=sb.authority_host,
                                  verify=sb.ca_pem)  # fmt: skip
            reads = 2000
            start = time.perf_counter()
            states = {auth.status for _ in range(reads)}
            per_read = (time.perf_counter() - start) / reads
            refreshes, ok = _interleaved_refreshes(sb, args.threads)
        finally:
            sb.stop()
    print("| measure | value |\n|---|---|")
    print(f"| new process, sign-in found in the cache (start, import, restore, one request), median of "
          f"{args.runs} | {statistics.median(cached):.2f} s ({cached_flows} device-code flows) |")
    print(f"| new process, device-code sign-in (memory cache, code approved at once), median of {args.runs} "
          f"| {statistics.median(fresh):.2f} s |")
    print(f"| `DeviceCodeAuth.status` from the cache file, mean of {reads} | {per_read * 1e6:.0f} µs ({states}) |")
    print(f"| {args.threads} threads whose 401s are in flight together | {refreshes} refresh grant(s), "
          f"{ok}/{args.threads} answered 200 |")


if __name__ == "__main__":
    main()
