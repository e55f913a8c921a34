"""A PySpark job that fails on purpose, so its batch ends 'dead' with the error in its log."""

import sys

from pyspark.sql import SparkSession

if __name__ == "__main__":
    spark = SparkSession.builder.appName("PythonFail").getOrCreate()
    message = sys.argv[1] if len(sys.argv) > 1 else "this job fails on purpose"
    print("fail.py: about to raise", flush=True)
    raise RuntimeError(f"sandbox example failure: {message}")
