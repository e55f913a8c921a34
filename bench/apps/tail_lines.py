"""Benchmark app: print N numbered lines spread over S seconds, in chunks every 0.1 s.

Usage: tail_lines.py [N] [S]. Submitted by absolute path (the sandbox runs local files as they
are); used by bench/run_benchmarks.py to tail a log while the job is still writing it.
"""

import sys
import time

from pyspark.sql import SparkSession

if __name__ == "__main__":
    spark = SparkSession.builder.appName("BenchTailLines").getOrCreate()
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 6.0
    ticks = max(1, int(seconds / 0.1))
    per_tick = -(-count // ticks)
    written = 0
    while written < count:
        chunk = min(per_tick, count - written)
        for i in range(written + 1, written + chunk + 1):
            sys.stdout.write(f"tail line {i:06d} of {count}\n")
        sys.stdout.flush()
        written += chunk
        time.sleep(0.1)
    spark.stop()
