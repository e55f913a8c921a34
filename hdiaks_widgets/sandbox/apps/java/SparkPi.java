package org.apache.spark.examples;

import java.util.ArrayList;
import java.util.List;

import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

/**
 * Computes an approximation to pi, like Spark's own SparkPi example.
 * Usage: SparkPi [slices]
 */
public final class SparkPi {
  public static void main(String[] args) {
    SparkSession spark = SparkSession.builder().appName("Spark Pi").getOrCreate();
    JavaSparkContext jsc = new JavaSparkContext(spark.sparkContext());
    int slices = args.length > 0 ? Integer.parseInt(args[0]) : 2;
    int n = (int) Math.min(100000L * slices, Integer.MAX_VALUE);
    List<Integer> seq = new ArrayList<>(n);
    for (int i = 1; i < n; i++) {
      seq.add(i);
    }
    JavaRDD<Integer> dataSet = jsc.parallelize(seq, slices);
    int count = dataSet.map(i -> {
      double x = Math.random() * 2 - 1;
      double y = Math.random() * 2 - 1;
      return (x * x + y * y <= 1) ? 1 : 0;
    }).reduce(Integer::sum);
    System.out.println("Pi is roughly " + 4.0 * count / (n - 1));
    spark.stop();
  }
}
