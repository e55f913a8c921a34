"""S1 in instructions, not seconds: ``valgrind --tool=callgrind`` counts the instructions a client
process executes, the same whatever else the shared machine is doing (docs/benchmarks.md, S1).

Each client (raw ``requests``, this package's ``LivyClient.get_batch_state``; ``--clients`` for more)
runs twice under callgrind against ``bench/load_server.py`` — once with no timed calls, once with
``--calls`` state reads — and the difference divided by the calls is the instructions per call
(imports and start-up cancel out). The server runs outside valgrind. Needs valgrind (Debian:
``apt-get install valgrind``). Usage: ``.venv/bin/python bench/s1_instructions.py [--calls 400]``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers import LoadServer  # noqa: E402 - bench/ is not a package

CHILD = """
import sys
sys.path.insert(0, {here!r})
from peers import s1_reader
read = s1_reader({client!r}, {url!r})
for i in range(30):
    read(i)
for i in range({calls}):
    read(i % 1000)
"""


def instructions(client: str, url: str, calls: int, out_dir: Path) -> int:
    code = CHILD.format(here=str(HERE), client=client, url=url, calls=calls)
    done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/cg.{client}.{calls}",
                           sys.executable, "-c", code], capture_output=True, text=True, check=True)  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no total for {client}: {done.stderr[-500:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--clients", nargs="+", default=["raw", "hdiaks"])
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    server = LoadServer()
    try:
        with tempfile.TemporaryDirectory(prefix="hdiaks-s1-") as tmp:
            per = {}
            for client in args.clients:
                base = instructions(client, server.url, 0, Path(tmp))
                timed = instructions(client, server.url, args.calls, Path(tmp))
                per[client] = (timed - base) / args.calls
                print(f"{client}: {per[client]:,.0f} instructions per call", file=sys.stderr)
    finally:
        server.stop()
    floor = per.get("raw")
    print("| client | instructions per state read | / raw |")
    print("|---|---|---|")
    for client, value in per.items():
        ratio = f"{value / floor:.3f}×" if floor else "–"
        print(f"| {client} | {value:,.0f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
