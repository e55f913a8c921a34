package org.apache.spark.examples;

import java.util.Arrays;

import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * Prints a few lines, runs one tiny Spark action, then throws so the driver fails.
 * Usage: FailingJob [message]
 */
public final class FailingJob {
  public static void main(String[] args) {
    String message = args.length > 0 ? args[0] : "failing on purpose";
    System.out.println("FailingJob: starting");
    System.err.println("FailingJob: about to run one action");
    SparkSession spark = SparkSession.builder().appName("Failing Job").getOrCreate();
    JavaSparkContext jsc = new JavaSparkContext(spark.sparkContext());
    long count = jsc.parallelize(Arrays.asList(1, 2, 3), 1).count();
    System.out.println("FailingJob: counted " + count);
    System.err.println("FailingJob: throwing now");
    System.out.flush();
    System.err.flush();
    spark.stop();
    throw new IllegalStateException("sandbox failing job: " + message);
  }
}
