"""Several Spark jobs of two stages each, every task taking a moment, so that the progress Spark
reports (jobs, stages, tasks done) moves through many values. Usage: stages.py [jobs] [seconds]

Each job is a ``reduceByKey`` (a map stage and a reduce stage) over 4 partitions whose map
tasks sleep ``seconds`` each; the counts it prints are the same on every run.
"""

import sys
import time

from pyspark.sql import SparkSession

if __name__ == "__main__":
    spark = SparkSession.builder.appName("PythonStages").getOrCreate()
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0

    def slow(x: int) -> tuple[int, int]:
        time.sleep(seconds / 10)
        return x % 3, 1

    for job in range(jobs):
        rdd = spark.sparkContext.parallelize(range(40), 4)  # 10 elements per task
        counts = sorted(rdd.map(slow).reduceByKey(lambda a, b: a + b, 2).collect())
        print(f"job {job + 1} of {jobs}: {counts}", flush=True)
    spark.stop()
