"""Spark batch job on Apache Livy, exported by hdiaks-widgets (self-contained).

Needs only Apache Airflow 2.4+ or 3.x on Python 3.11+, requests and msal: the hdiaks-widgets
modules the task uses are embedded below, verbatim. The task does not defer (the triggerer cannot
import a class that only lives in a DAG file), so it holds a worker slot while the batch runs.

Credentials are Airflow Variables read at run time, never at parse time (api-client-id,
api-secret, tenant-id; see the setup sheet). Trigger with config to override spark_cluster_fqdn,
app_jar_path, job_name, class_name or args. A retry reattaches to its batch; clearing the task
runs the job again under a new batch name. JOB_CONFIG is the job this file was made from (fields
left out have their defaults): load it back with hdiaks_widgets.dag_export.load_dag_config(path).
"""

from __future__ import annotations

import ast
import datetime
import importlib
import importlib.abc
import importlib.util
import linecache
import sys

try:  # Airflow 3
    from airflow.sdk import dag
except ImportError:  # Airflow 2.4 - 2.x
    from airflow.decorators import dag

# --- Values from the job form (generated from repr() of each value) ---------------------------
DAG_ID = 'spark_pi'
SCHEDULE = None
RETRIES = 1
RETRY_DELAY_SECONDS = 300
TIMEOUT_SECONDS = 21600
POLL_SECONDS = 10
MAX_POLL_ERRORS = 8
DEFERRABLE = False
JOB_CONFIG = {
    'version': 1,
    'profile': {
        'name': 'prod-eastus2',
        'flavour': 'hdinsight-aks',
        'fqdn': 'demospark.63784884848.eastus2.hdinsightaks.net',
        'tenant_id': '00000000-0000-0000-0000-000000000000',
        'secret_source': 'keyvault',
        'vault_url': 'https://hdiaks-kv.vault.azure.net',
    },
    'spec': {
        'file': 'abfs://examples@sandbox.dfs.core.windows.net/jars/spark-examples.jar',
        'class_name': 'org.apache.spark.examples.SparkPi',
        'args': [
            '10',
        ],
        'name': 'spark-pi',
        'executor_memory': '2g',
        'conf': {
            'spark.executor.instances': '2',
        },
    },
}

# --- hdiaks-widgets modules, verbatim (read from the installed package at export time) ---------
EMBED_PACKAGE = '<hash of the sources>'
EMBEDDED_SOURCES = {...}  # the operator's modules, verbatim; elided in this golden file


class EmbeddedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves EMBEDDED_SOURCES as the package EMBED_PACKAGE.

    Each module's absolute hdiaks_widgets imports are renamed to EMBED_PACKAGE (with ast) when
    it loads, so the text above stays the package's verbatim source.
    """

    def __init__(self, package, sources):
        self.package, self.sources = package, sources

    def original(self, fullname):
        if fullname == self.package or fullname.startswith(self.package + "."):
            name = "hdiaks_widgets" + fullname[len(self.package):]
            if name in self.sources:
                return name
        return None

    def find_spec(self, fullname, path=None, target=None):
        name = self.original(fullname)
        if name is None:
            return None
        is_package = any(other.startswith(name + ".") for other in self.sources)
        return importlib.util.spec_from_loader(fullname, self, is_package=is_package)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        name = self.original(module.__name__)
        source = self.sources[name]
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module == "hdiaks_widgets" or node.module.startswith("hdiaks_widgets."):
                    node.module = self.package + node.module[len("hdiaks_widgets"):]
        filename = "<" + name + " embedded in " + __file__ + ">"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(tree, filename, "exec"), module.__dict__)


if not any(getattr(finder, "package", None) == EMBED_PACKAGE for finder in sys.meta_path):
    sys.meta_path.insert(0, EmbeddedModules(EMBED_PACKAGE, EMBEDDED_SOURCES))
_operator = importlib.import_module(EMBED_PACKAGE + ".airflow.operator")
SparkBatchOperator, trigger_params = _operator.SparkBatchOperator, _operator.trigger_params


@dag(
    dag_id=DAG_ID,
    schedule=SCHEDULE,
    start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    params=trigger_params(JOB_CONFIG),
    tags=["hdiaks-widgets", "spark", "livy"],
    doc_md=__doc__,
)
def spark_batch():
    SparkBatchOperator(
        task_id="run_spark_batch",
        job_config=JOB_CONFIG,
        timeout=TIMEOUT_SECONDS,
        poll_interval=POLL_SECONDS,
        max_poll_errors=MAX_POLL_ERRORS,
        deferrable=DEFERRABLE,
        retries=RETRIES,
        retry_delay=datetime.timedelta(seconds=RETRY_DELAY_SECONDS),
        # A margin over the operator's own deadline, so the batch is killed by the operator.
        execution_timeout=datetime.timedelta(seconds=TIMEOUT_SECONDS + 300),
    )


spark_batch_dag = spark_batch()
