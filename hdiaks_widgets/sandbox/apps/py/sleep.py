"""Keep a Spark application running for N seconds (kill tests). Usage: sleep.py [seconds]"""

import sys
import time

from pyspark.sql import SparkSession

if __name__ == "__main__":
    spark = SparkSession.builder.appName("PythonSleep").getOrCreate()
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 600.0
    print(f"sleeping for {seconds:g} seconds", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
    print("woke up", flush=True)
    spark.stop()
