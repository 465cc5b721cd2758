package agora.examples;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.TreeSet;

import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import scala.Tuple2;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;

/**
 * One job per argument (a host name), each of 4 tasks whose partitions
 * prefer that host, as partitions of a file whose blocks live there do.
 * Each task sleeps 300 ms and reports the host of the executor it ran
 * on; after each job the driver waits (at most 120 s) until it has no
 * executor left (dynamic allocation releases idle ones). It prints
 * "job N on HOST ran on [HOSTS]" and "released" (or "not released").
 */
public final class Preferred {
  public static void main(String[] args) throws Exception {
    int parts = 4;
    ClassTag<Integer> tag = ClassTag$.MODULE$.apply(Integer.class);
    try (JavaSparkContext sc = new JavaSparkContext(new SparkConf().setAppName("Preferred Hosts"))) {
      for (int j = 0; j < args.length; j++) {
        List<Tuple2<Integer, scala.collection.immutable.Seq<String>>> data = new ArrayList<>();
        for (int i = 0; i < parts; i++) {
          data.add(new Tuple2<>(i, scala.jdk.javaapi.CollectionConverters.asScala(List.of(args[j])).toList()));
        }
        JavaRDD<Integer> rdd = JavaRDD.fromRDD(
            sc.sc().makeRDD(scala.jdk.javaapi.CollectionConverters.asScala(data).toList(), tag), tag);
        List<String> hosts = rdd.mapPartitions((Iterator<Integer> it) -> {
          Thread.sleep(300);
          return List.of(SparkEnv.get().blockManager().blockManagerId().host()).iterator();
        }).collect();
        System.out.println("job " + (j + 1) + " on " + args[j] + " ran on " + new TreeSet<>(hosts));
        long deadline = System.currentTimeMillis() + 120_000;
        // The status tracker counts the driver's block manager too.
        while (sc.sc().statusTracker().getExecutorInfos().length > 1 && System.currentTimeMillis() < deadline) {
          Thread.sleep(200);
        }
        System.out.println(sc.sc().statusTracker().getExecutorInfos().length <= 1 ? "released" : "not released");
      }
    }
  }
}
