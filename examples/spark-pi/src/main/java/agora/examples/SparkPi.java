package agora.examples;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

/**
 * Estimates pi as Spark's SparkPi example does: throws 100,000 darts per
 * slice at the unit square, in SLICES partitions (the first argument,
 * default 2), and prints "Pi is roughly X" on stdout. An argument that is
 * not a number fails the application (exit 1).
 */
public final class SparkPi {
  public static void main(String[] args) throws Exception {
    int slices = args.length > 0 ? Integer.parseInt(args[0]) : 2;
    int n = (int) Math.min(100000L * slices, Integer.MAX_VALUE);
    List<Integer> l = new ArrayList<>(n);
    for (int i = 1; i < n; i++) {
      l.add(i);
    }
    SparkConf conf = new SparkConf().setAppName("Spark Pi");
    try (JavaSparkContext sc = new JavaSparkContext(conf)) {
      int count = sc.parallelize(l, slices).map(i -> {
        double x = ThreadLocalRandom.current().nextDouble() * 2 - 1;
        double y = ThreadLocalRandom.current().nextDouble() * 2 - 1;
        return (x * x + y * y <= 1) ? 1 : 0;
      }).reduce(Integer::sum);
      System.out.println("Pi is roughly " + 4.0 * count / (n - 1));
    }
  }
}
