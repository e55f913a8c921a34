"""Print N numbered lines on stdout and N on stderr, interleaved (log-fidelity tests).

Usage: storm.py N [fail] [pause]
  fail   end by printing "ERROR storm: final error line" on stderr and raising
  pause  seconds to sleep after every 500 lines of each stream (so a reader sees the log move)
"""

import sys
import time

from pyspark.sql import SparkSession

if __name__ == "__main__":
    spark = SparkSession.builder.appName("PythonStorm").getOrCreate()
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    fail = len(sys.argv) > 2 and sys.argv[2] == "fail"
    pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    out, err = sys.stdout, sys.stderr
    for i in range(1, count + 1):
        out.write(f"out {i:06d} of {count}\n")
        err.write(f"err {i:06d} of {count}\n")
        if pause and i % 500 == 0:
            out.flush()
            err.flush()
            time.sleep(pause)
    out.flush()
    err.flush()
    spark.sparkContext.parallelize(range(10), 2).count()
    if fail:
        err.write("ERROR storm: final error line\n")
        err.flush()
        spark.stop()
        raise RuntimeError("storm failed after printing its lines")
    spark.stop()
