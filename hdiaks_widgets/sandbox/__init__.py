"""A local, Livy-compatible Spark server for demos, notebooks and tests.

Start it with ``python -m hdiaks_widgets.sandbox --port 0 --root DIR --ready-file FILE`` (or
:func:`run_sandbox` / :class:`SandboxServer` from Python, or ``hdiaks sandbox``). It speaks
Livy's REST API (``/batches``, ``/sessions``), runs real ``spark-submit --master local[N]`` from
the pyspark package (or, with ``--cluster N``, on a Spark standalone cluster it starts: jars in
cluster deploy mode, the History Server for finished applications), serves the log as
Livy really does (two 200-line queues, a view rebuilt per request, ``--log-shape``
process, yarn or kubernetes; see :mod:`hdiaks_widgets.sandbox.logbuf` and ``docs/fidelity.md``),
and maps ``abfs[s]://`` / ``wasb[s]://`` URIs to ``<root>/storage/<account>/
<container>/<path>``.

Example applications (built at first start, cached by source hash) are published at::

    abfs://examples@sandbox.dfs.core.windows.net/jars/spark-examples.jar
        org.apache.spark.examples.SparkPi [slices]     -> "Pi is roughly 3.14..."
        org.apache.spark.examples.JavaWordCount <file>  -> "word: count" lines
        org.apache.spark.examples.FailingJob [message]  (the driver throws: ends dead)
        org.apache.spark.examples.LogStorm N [fail]      (N numbered lines on each stream)
    abfs://examples@sandbox.dfs.core.windows.net/py/pi.py [slices]
    abfs://examples@sandbox.dfs.core.windows.net/py/wordcount.py <file>
    abfs://examples@sandbox.dfs.core.windows.net/py/fail.py [message]   (ends dead)
    abfs://examples@sandbox.dfs.core.windows.net/py/lines.py [N]        (N numbered lines)
    abfs://examples@sandbox.dfs.core.windows.net/py/sleep.py [seconds]  (kill tests)
    abfs://examples@sandbox.dfs.core.windows.net/py/storm.py N [fail|ok] [pause]  (both streams)
    abfs://examples@sandbox.dfs.core.windows.net/data/words.txt         (WordCount input)

Not Livy: ``/_sandbox/faults`` (GET lists rules and request counts, POST adds rules, DELETE
clears both), ``/_sandbox/info`` and ``/_sandbox/batches/<id>`` (also deleted batches, with the
PIDs left in their process group). See :mod:`hdiaks_widgets.sandbox.faults`.

This package imports only level-0 modules of hdiaks_widgets plus flask and werkzeug.
"""

from __future__ import annotations

from hdiaks_widgets.sandbox.apps import (
    EXAMPLE_PATHS,
    EXAMPLES_ACCOUNT,
    EXAMPLES_CONTAINER,
    SPARK_PI_CLASS,
    WORD_COUNT_CLASS,
)
from hdiaks_widgets.sandbox.storage import storage_uri

__all__ = [
    "EXAMPLES",
    "EXAMPLE_PATHS",
    "EXAMPLES_ACCOUNT",
    "EXAMPLES_CONTAINER",
    "SPARK_PI_CLASS",
    "SandboxServer",
    "WORD_COUNT_CLASS",
    "main",
    "run_sandbox",
]

# Short name -> abfs:// URI of each published example.
EXAMPLES: dict[str, str] = {
    key: storage_uri(EXAMPLES_CONTAINER, EXAMPLES_ACCOUNT, rel) for key, rel in EXAMPLE_PATHS.items()
}


def __getattr__(name: str) -> object:
    # The server pulls in flask and werkzeug: import it only when asked for.
    if name in ("SandboxServer", "run_sandbox", "main"):
        from hdiaks_widgets.sandbox import service

        return getattr(service, name)
    raise AttributeError(name)
