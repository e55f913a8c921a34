"""Token economy (issue 13, item 3): token requests per 1,000 Livy calls through service-principal
auth, with real msal against the sandbox identity endpoint (HTTPS on 127.0.0.1).

Run with ``.venv/bin/python bench/token_economy.py`` (``make bench`` runs it); it writes its
section of ``docs/benchmarks.md`` (between the ``bench:tokens`` markers). The Livy calls go to
``bench/load_server.py`` (``GET /batches/{id}/state``), which does not check tokens: what is
counted is how often the client side asks Entra (the sandbox's ``/_identity/stats``
``token_requests``) while every Livy request carries a bearer token. Cases:

1. one ``LivyClient`` with one ``ServicePrincipalAuth``, 1,000 sequential calls;
2. five ``LivyClient``s, each with its own ``ServicePrincipalAuth`` for the same principal (what
   ``LivyClient.from_profile`` builds for each client), 200 calls each, interleaved;
3. ten ``BatchRun``s on ten such clients polled from ten threads at once (as monitors in one
   kernel), 50 polls each (each poll: ``GET /batches/{id}`` and ``GET /batches/{id}/log``);
4. case 1 after ``POST /_identity/revoke`` (every token issued so far refused by the identity
   endpoint; a cached token is still used until the service answers 401, so no new request).

Also: the client CPU a token adds to each call (case 1 against the same loop without auth).
Measurements, not tests: nothing asserts a count.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- bench:tokens begin (bench/token_economy.py rewrites this section) -->"
END = "<!-- bench:tokens end -->"
TENANT = "bench-tenant"
CLIENT_ID = "bench-app"
SECRET = "bench-secret-not-real"  # noqa: S105 - a throwaway secret of the loopback identity endpoint


class Identity:
    """``python -m hdiaks_widgets.sandbox.identity`` in its own process, stopped by its PID."""

    def __init__(self, root: Path, lifetime: int) -> None:
        config = root / "identity.json"
        config.write_text(json.dumps({"tenant_id": TENANT, "clients": {CLIENT_ID: SECRET},
                                      "token_lifetime": lifetime}))  # fmt: skip
        ready = root / "auth" / "endpoints.json"
        argv = [sys.executable, "-m", "hdiaks_widgets.sandbox.identity", "--root", str(root), "--config", str(config)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not (ready.is_file() and json.loads(ready.read_text()).get("pid") == self.proc.pid):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the identity endpoint did not start")
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        self.authority_host = str(info["authority_host"])
        self.ca_pem = str(info["ca_pem"])

    def stats(self) -> dict[str, int]:
        response = requests.get(f"{self.authority_host}/_identity/stats", verify=self.ca_pem, timeout=30)
        response.raise_for_status()
        return {k: int(v) for k, v in response.json().items()}

    def revoke(self) -> None:
        requests.post(f"{self.authority_host}/_identity/revoke", verify=self.ca_pem, timeout=30).raise_for_status()

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from peers import LoadServer

    from hdiaks_widgets import LivyClient
    from hdiaks_widgets.auth import ServicePrincipalAuth, clear_token_cache
    from hdiaks_widgets.run import BatchRun

    results: dict[str, Any] = {"lifetime_s": args.lifetime}
    server = LoadServer("--big-lines", "10")
    with tempfile.TemporaryDirectory(prefix="hdiaks-tokens-") as tmp:
        identity = Identity(Path(tmp), args.lifetime)
        try:

            def auth() -> ServicePrincipalAuth:
                return ServicePrincipalAuth(tenant_id=TENANT, client_id=CLIENT_ID, client_secret=SECRET,
                                            authority_host=identity.authority_host, verify=identity.ca_pem)  # fmt: skip

            def case(name: str, body: Any) -> None:
                clear_token_cache()  # every case starts with no token, as a fresh kernel does
                before = identity.stats()
                server.reset()
                t0 = time.perf_counter()
                body()
                took = time.perf_counter() - t0
                after = identity.stats()
                calls = server.stats()["requests"]
                tokens = after["token_requests"] - before["token_requests"]
                results[name] = {"livy_calls": calls, "token_requests": tokens, "s": took,
                                 "per_1000": tokens / max(1, calls) * 1000}  # fmt: skip
                print(f"{name}: {calls} Livy calls, {tokens} token requests", file=sys.stderr)

            def one() -> None:
                client = LivyClient(server.url, auth=auth())
                for i in range(1000):
                    client.get_batch_state(i % 1000)

            def five() -> None:
                clients = [LivyClient(server.url, auth=auth()) for _ in range(5)]
                for i in range(200):
                    for client in clients:
                        client.get_batch_state(i)

            def monitors() -> None:
                clients = [LivyClient(server.url, auth=auth()) for _ in range(10)]
                start = threading.Barrier(len(clients))

                def poll(i: int) -> None:
                    start.wait()  # the first calls, and so the first token, from ten threads at once
                    run = BatchRun.attach(clients[i], str(i))
                    for _ in range(50):
                        run.reader.read(run.client, run.client.get_batch(run.batch_id))  # type: ignore[arg-type]

                threads = [threading.Thread(target=poll, args=(i,)) for i in range(len(clients))]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()

            case("one client", one)
            case("five clients", five)
            case("ten monitors in threads", monitors)

            def revoked() -> None:
                client = LivyClient(server.url, auth=auth())
                client.get_batch_state(0)
                identity.revoke()
                for i in range(999):
                    client.get_batch_state(i)

            case("one client, tokens revoked after the first call", revoked)
            # The CPU a bearer token adds per call: the same loop with and without auth.
            cpu: dict[str, float] = {}
            for label, made in (("no auth", lambda: LivyClient(server.url)), ("service principal", lambda: LivyClient(
                    server.url, auth=auth()))):  # fmt: skip
                client = made()
                for i in range(50):
                    client.get_batch_state(i)
                c0 = time.process_time()
                for i in range(1000):
                    client.get_batch_state(i)
                cpu[label] = (time.process_time() - c0) * 1000
            results["cpu_us_per_call"] = cpu
        finally:
            identity.stop()
            server.stop()
    return results


def render(r: dict[str, Any], command: str, date: str) -> list[str]:
    rows = [[name, f"{r['lifetime_s']:,}", f"{x['livy_calls']:,}", str(x["token_requests"]), f"{x['per_1000']:.1f}",
             f"{x['s']:.1f}"] for name, x in r.items() if isinstance(x, dict) and "token_requests" in x]  # fmt: skip
    short = r.get("short")
    if short:
        rows += [[name, f"{short['lifetime_s']:,}", f"{x['livy_calls']:,}", str(x["token_requests"]),
                  f"{x['per_1000']:.1f}", f"{x['s']:.1f}"] for name, x in short.items()
                 if isinstance(x, dict) and "token_requests" in x]  # fmt: skip
    cpu = r["cpu_us_per_call"]
    out = [BEGIN, "## Token economy: token requests per 1,000 Livy calls (issue 13, item 3)", "",
           f"Command: `{command}` ({date}). Real `msal` (`ServicePrincipalAuth`, client credentials) against the "
           "sandbox identity endpoint over HTTPS on 127.0.0.1, tokens living "
           f"{r['lifetime_s']:,} s; the Livy calls go to `bench/load_server.py`, which does not check them (every "
           "request still carries `Authorization: Bearer`). Token requests are the identity endpoint's own count "
           "(`/_identity/stats` `token_requests`); each case starts with an empty token cache "
           "(`clear_token_cache()`), as a fresh kernel does. Goal: 1 per token lifetime.", ""]  # fmt: skip
    out += [
        "| case | token lifetime s | Livy calls | token requests | per 1,000 calls | s |",
        "|---|---|---|---|---|---|",
    ]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    out += ["", "`ten monitors in threads`: ten `BatchRun`s, each on its own `LivyClient` and `ServicePrincipalAuth` "
            "for the same principal, read from ten threads started together (each read: `GET /batches/{id}` and its "
            "log view). The clients share msal's application and token cache per (authority, client id) "
            "(`auth.tokens._confidential_app`), so a new client or monitor costs no token request; one lock per "
            "(authority, client) makes threads starting together wait for the first token instead of each asking "
            "(3 requests for 10 threads before commit 5d0396b). After "
            "`/_identity/revoke` the cached token is still sent (the load server does not check it); against a "
            "service that answers 401, `_RetryOn401` drops the cached token and asks once "
            "(tests/test_auth.py covers that path).", "",
            "msal treats a cached token with less than 5 minutes left as expired (`msal/application.py`: "
            "`if expires_in < 5*60:  # Then consider it expired`), so a token is reused for its lifetime minus 5 "
            "minutes: with Entra's default access tokens of about an hour (learn.microsoft.com/entra/identity-platform/"
            "access-tokens; the exact range was not re-checked here) that is about one request an hour. The "
            "short-lifetime rows show the other side: a service handing out tokens of 5 minutes or less makes "
            "msal ask for a new token on every call.", "",
            f"Client CPU per state read: {cpu['no auth'] :.0f} µs without auth, {cpu['service principal']:.0f} µs with "
            f"the service principal's token (msal's cache lookup on every request), "
            f"{cpu['service principal'] / cpu['no auth']:.2f}×.", END]  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    import datetime as dt

    from peers import splice

    parser = argparse.ArgumentParser(description="token requests per 1,000 Livy calls")
    parser.add_argument("--lifetime", type=int, default=3600, help="token lifetime the identity endpoint gives (s)")
    parser.add_argument("--short-lifetime", type=int, default=240, help="a second run with tokens this short (s)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--skip-short", action="store_true", help="leave out the short-lifetime run")
    args = parser.parse_args(argv)
    results = measure(args)
    if args.short_lifetime and not args.skip_short:
        results["short"] = measure(argparse.Namespace(lifetime=args.short_lifetime))
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = render(results, ".venv/bin/python bench/token_economy.py", date)
    print("\n".join(section))
    if not args.no_write:
        doc = ROOT / "docs" / "benchmarks.md"
        doc.write_text(splice(doc.read_text(), section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
