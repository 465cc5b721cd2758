package org.apache.spark.scheduler.cluster.agora;

import org.apache.spark.SparkContext;
import org.apache.spark.scheduler.ExternalClusterManager;
import org.apache.spark.scheduler.SchedulerBackend;
import org.apache.spark.scheduler.TaskScheduler;
import org.apache.spark.scheduler.TaskSchedulerImpl;

/**
 * Spark's extension point for agora: master URLs agora://HOST:PORT and
 * mesos://HOST:PORT name agora's Spark scheduler (spark-submit accepts only
 * the mesos:// form). Tasks are scheduled by Spark's own TaskSchedulerImpl;
 * executors are asked for and released through {@link AgoraSchedulerBackend}.
 * Spark's ExternalClusterManager is private[spark] in Scala, public in
 * bytecode, which is why this class lives under org.apache.spark.
 */
public class AgoraClusterManager implements ExternalClusterManager {
  @Override
  public boolean canCreate(String masterURL) {
    return masterURL.startsWith("agora://") || masterURL.startsWith("mesos://");
  }

  @Override
  public TaskScheduler createTaskScheduler(SparkContext sc, String masterURL) {
    return new TaskSchedulerImpl(sc);
  }

  @Override
  public SchedulerBackend createSchedulerBackend(SparkContext sc, String masterURL, TaskScheduler scheduler) {
    String addr = masterURL.substring(masterURL.indexOf("://") + 3);
    return new AgoraSchedulerBackend((TaskSchedulerImpl) scheduler, sc, addr);
  }

  @Override
  public void initialize(TaskScheduler scheduler, SchedulerBackend backend) {
    ((TaskSchedulerImpl) scheduler).initialize(backend);
  }
}
