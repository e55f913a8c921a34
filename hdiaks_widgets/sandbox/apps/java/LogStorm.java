package org.apache.spark.examples;

import java.util.Arrays;

import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * Prints N numbered lines to stdout and N to stderr, interleaved, then runs one tiny action.
 * Usage: LogStorm N [fail]
 */
public final class LogStorm {
  public static void main(String[] args) {
    int n = args.length > 0 ? Integer.parseInt(args[0]) : 1000;
    boolean fail = args.length > 1 && "fail".equals(args[1]);
    SparkSession spark = SparkSession.builder().appName("Log Storm").getOrCreate();
    JavaSparkContext jsc = new JavaSparkContext(spark.sparkContext());
    for (int i = 1; i <= n; i++) {
      System.out.printf("out %06d of %d%n", i, n);
      System.out.flush();
      System.err.printf("err %06d of %d%n", i, n);
      System.err.flush();
    }
    long count = jsc.parallelize(Arrays.asList(1, 2, 3), 1).count();
    System.out.println("LogStorm: counted " + count);
    if (fail) {
      System.err.println("ERROR LogStorm: final error line");
      System.err.flush();
      spark.stop();
      throw new IllegalStateException("LogStorm failed on purpose after " + n + " lines");
    }
    spark.stop();
  }
}
