"""Spark batch job on Apache Livy, exported by hdiaks-widgets.

Needs Apache Airflow 2.4+ or 3.x with hdiaks-widgets installed on the workers, the triggerer
and the DAG processor: pip install "hdiaks-widgets[airflow]" (requests and msal only). The task
defers while the batch runs, so it holds no worker slot.

Credentials are Airflow Variables read at run time, never at parse time (api-client-id,
api-secret, tenant-id; see the setup sheet). Trigger with config to override spark_cluster_fqdn,
app_jar_path, job_name, class_name or args. A retry reattaches to its batch; clearing the task
runs the job again under a new batch name. JOB_CONFIG is the job this file was made from (fields
left out have their defaults): load it back with hdiaks_widgets.dag_export.load_dag_config(path).
"""

from __future__ import annotations

import datetime

from hdiaks_widgets.airflow.operator import SparkBatchOperator, trigger_params

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
DEFERRABLE = True
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
