package agora.examples;

import java.util.ArrayList;
import java.util.List;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

/**
 * A job slow enough to lose an executor in the middle of: sums 1..SLICES
 * (the first argument, default 20) in SLICES tasks that each sleep MILLIS
 * (the second, default 1000), and prints "sum is X".
 */
public final class SlowSum {
  public static void main(String[] args) throws Exception {
    int slices = args.length > 0 ? Integer.parseInt(args[0]) : 20;
    long millis = args.length > 1 ? Long.parseLong(args[1]) : 1000;
    List<Integer> l = new ArrayList<>(slices);
    for (int i = 1; i <= slices; i++) {
      l.add(i);
    }
    try (JavaSparkContext sc = new JavaSparkContext(new SparkConf().setAppName("Slow Sum"))) {
      long sum = sc.parallelize(l, slices).map(i -> {
        Thread.sleep(millis);
        return (long) i;
      }).reduce(Long::sum);
      System.out.println("sum is " + sum);
    }
  }
}
