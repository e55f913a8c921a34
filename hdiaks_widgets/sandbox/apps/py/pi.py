"""Estimate pi with PySpark (like Spark's examples/src/main/python/pi.py). Usage: pi.py [slices]"""

import random
import sys
from operator import add

from pyspark.sql import SparkSession

if __name__ == "__main__":
    spark = SparkSession.builder.appName("PythonPi").getOrCreate()
    partitions = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    n = 100000 * partitions

    def inside(_: int) -> int:
        x = random.random() * 2 - 1
        y = random.random() * 2 - 1
        return 1 if x * x + y * y <= 1 else 0

    count = spark.sparkContext.parallelize(range(1, n + 1), partitions).map(inside).reduce(add)
    print(f"Pi is roughly {4.0 * count / n:f}")
    spark.stop()
