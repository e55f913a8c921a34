"""Print N numbered lines to stdout (log-paging tests). Usage: lines.py [N]"""

import sys

from pyspark.sql import SparkSession

if __name__ == "__main__":
    spark = SparkSession.builder.appName("PythonLines").getOrCreate()
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    out = sys.stdout
    for i in range(1, count + 1):
        out.write(f"line {i:06d} of {count}\n")
    out.flush()
    spark.stop()
