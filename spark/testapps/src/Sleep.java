package agora.examples;

import java.util.Arrays;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

/**
 * A long-running application for tests of kill and supervise: starts a
 * SparkContext, runs one small job, prints "started", then sleeps SECONDS
 * (the first argument) and prints "woke".
 */
public final class Sleep {
  public static void main(String[] args) throws Exception {
    long seconds = args.length > 0 ? Long.parseLong(args[0]) : 600;
    try (JavaSparkContext sc = new JavaSparkContext(new SparkConf().setAppName("Sleep"))) {
      long n = sc.parallelize(Arrays.asList(1, 2, 3)).count();
      System.out.println("started " + n);
      System.out.flush();
      Thread.sleep(seconds * 1000);
      System.out.println("woke");
    }
  }
}
