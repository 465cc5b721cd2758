package agora.examples;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.util.LongAccumulator;
import scala.Tuple2;

/**
 * A job with a long idle phase between two stages that share a shuffle:
 * counts N numbers by their remainder mod 10 (the first argument, default
 * 2000) in a shuffle, waits until the driver has no executor left (at
 * most the second argument's seconds, default 120), then reads the
 * shuffle's output again. It prints "released" (or "not released"), the
 * counts as "counts a=b,...", and "map tasks X" — the map tasks run over
 * the whole job: as many as the partitions when the second read found the
 * first's shuffle files where the released executors left them.
 */
public final class IdleShuffle {
  public static void main(String[] args) throws Exception {
    int n = args.length > 0 ? Integer.parseInt(args[0]) : 2000;
    long idle = args.length > 1 ? Long.parseLong(args[1]) : 120;
    int parts = 4;
    List<Integer> l = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      l.add(i);
    }
    try (JavaSparkContext sc = new JavaSparkContext(new SparkConf().setAppName("Idle Shuffle"))) {
      LongAccumulator maps = sc.sc().longAccumulator("map tasks");
      JavaPairRDD<Integer, Long> counts = sc.parallelize(l, parts).mapPartitionsToPair(it -> {
        maps.add(1);
        List<Tuple2<Integer, Long>> out = new ArrayList<>();
        while (it.hasNext()) {
          out.add(new Tuple2<>(it.next() % 10, 1L));
        }
        return out.iterator();
      }).reduceByKey(Long::sum, parts);
      System.out.println("stage one: " + counts.count() + " keys");
      long deadline = System.currentTimeMillis() + idle * 1000;
      // The status tracker counts the driver's block manager too.
      while (sc.sc().statusTracker().getExecutorInfos().length > 1 && System.currentTimeMillis() < deadline) {
        Thread.sleep(200);
      }
      System.out.println(sc.sc().statusTracker().getExecutorInfos().length <= 1 ? "released" : "not released");
      StringBuilder b = new StringBuilder("counts ");
      for (Map.Entry<Integer, Long> e : new java.util.TreeMap<>(counts.collectAsMap()).entrySet()) {
        b.append(e.getKey()).append('=').append(e.getValue()).append(',');
      }
      System.out.println(b.substring(0, b.length() - 1));
      System.out.println("map tasks " + maps.value());
    }
  }
}
