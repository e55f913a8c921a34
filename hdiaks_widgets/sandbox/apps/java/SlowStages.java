package org.apache.spark.examples;

import java.util.ArrayList;
import java.util.List;

import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

import scala.Tuple2;

/**
 * Several Spark jobs of two stages each (a map stage of 4 tasks, a reduce stage of 2), every
 * map task sleeping a moment, so that the progress Spark reports moves through many values; the
 * JVM twin of the sandbox's stages.py, for cluster deploy mode.
 * Usage: SlowStages [jobs] [milliseconds per element, 10 elements per map task]
 */
public final class SlowStages {
  public static void main(String[] args) {
    int jobs = args.length > 0 ? Integer.parseInt(args[0]) : 3;
    long millis = args.length > 1 ? Long.parseLong(args[1]) : 100L;
    SparkSession spark = SparkSession.builder().appName("SlowStages").getOrCreate();
    JavaSparkContext jsc = JavaSparkContext.fromSparkContext(spark.sparkContext());
    List<Integer> seq = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      seq.add(i);
    }
    for (int job = 1; job <= jobs; job++) {
      List<Tuple2<Integer, Integer>> counts = jsc.parallelize(seq, 4)
          .mapToPair(x -> {
            Thread.sleep(millis);
            return new Tuple2<>(x % 3, 1);
          })
          .reduceByKey(Integer::sum, 2)
          .collect();
      System.out.println("job " + job + " of " + jobs + ": " + counts);
    }
    spark.stop();
  }
}
