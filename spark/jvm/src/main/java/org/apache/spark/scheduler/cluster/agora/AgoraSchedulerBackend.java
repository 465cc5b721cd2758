package org.apache.spark.scheduler.cluster.agora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Map;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkException;
import org.apache.spark.resource.ResourceProfile;
import org.apache.spark.scheduler.TaskSchedulerImpl;
import org.apache.spark.scheduler.cluster.CoarseGrainedSchedulerBackend;
import scala.Tuple2;
import scala.concurrent.Future;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The driver's side of agora's Spark scheduler: it registers the
 * application (driver URL, application ID, the spark.* settings the
 * scheduler sizes and places executors by), passes on Spark's requests for
 * a total of executors and for kills, and says when the application ends.
 * Every decision (sizing, offers, placement, blocklisting) is the Go
 * scheduler's; this class only relays, as plain HTTP and JSON.
 */
public class AgoraSchedulerBackend extends CoarseGrainedSchedulerBackend {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration TIMEOUT = Duration.ofSeconds(30);

  private final SparkContext sc;
  private final String base;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(TIMEOUT).build();
  private volatile String appId;

  public AgoraSchedulerBackend(TaskSchedulerImpl scheduler, SparkContext sc, String addr) {
    super(scheduler, sc.env().rpcEnv());
    this.sc = sc;
    this.base = "http://" + addr + "/v1/applications";
  }

  @Override
  public void start() {
    super.start();
    appId = applicationId();
    ObjectNode req = JSON.createObjectNode();
    req.put("appId", appId);
    req.put("appName", sc.appName());
    req.put("driverUrl", "spark://" + CoarseGrainedSchedulerBackend.ENDPOINT_NAME() + "@"
        + sc.conf().get("spark.driver.host") + ":" + sc.conf().get("spark.driver.port"));
    ObjectNode conf = req.putObject("conf");
    for (Tuple2<String, String> kv : sc.conf().getAll()) {
      if (!kv._1().toLowerCase().matches(".*(secret|password|token).*")) {
        conf.put(kv._1(), kv._2());
      }
    }
    try {
      call("POST", base, req);
    } catch (SparkException e) {
      super.stop();
      throw new RuntimeException(e.getMessage(), e);
    }
    logInfo(() -> "registered " + appId + " with agora's Spark scheduler at " + base);
  }

  @Override
  public void stop() {
    try {
      if (appId != null) {
        call("DELETE", base + "/" + appId, null);
      }
    } catch (SparkException e) {
      logWarning(() -> "agora's Spark scheduler: " + e.getMessage());
    } finally {
      super.stop();
    }
  }

  @Override
  public Future<Object> doRequestTotalExecutors(scala.collection.immutable.Map<ResourceProfile, Object> totals) {
    int total = 0;
    for (Map.Entry<ResourceProfile, Object> e : CollectionConverters.asJava(totals).entrySet()) {
      total += (Integer) e.getValue();
    }
    ObjectNode req = JSON.createObjectNode();
    req.put("total", total);
    return relay("POST", base + "/" + appId + "/executors", req);
  }

  @Override
  public Future<Object> doKillExecutors(scala.collection.immutable.Seq<String> executorIds) {
    ObjectNode req = JSON.createObjectNode();
    var ids = req.putArray("executorIds");
    for (String id : CollectionConverters.asJava(executorIds)) {
      ids.add(id);
    }
    return relay("POST", base + "/" + appId + "/kill", req);
  }

  private Future<Object> relay(String method, String url, JsonNode body) {
    try {
      call(method, url, body);
      return Future.successful(Boolean.TRUE);
    } catch (SparkException e) {
      logWarning(() -> "agora's Spark scheduler: " + e.getMessage());
      return Future.successful(Boolean.FALSE);
    }
  }

  /** call sends one request; anything but a 2xx is an error with the scheduler's message. */
  private void call(String method, String url, JsonNode body) throws SparkException {
    HttpRequest.BodyPublisher pub = body == null
        ? HttpRequest.BodyPublishers.noBody()
        : HttpRequest.BodyPublishers.ofString(body.toString());
    HttpRequest req = HttpRequest.newBuilder(URI.create(url)).timeout(TIMEOUT)
        .header("Content-Type", "application/json").method(method, pub).build();
    HttpResponse<String> resp;
    try {
      resp = http.send(req, HttpResponse.BodyHandlers.ofString());
    } catch (Exception e) {
      throw new SparkException(method + " " + url + ": " + e);
    }
    if (resp.statusCode() / 100 != 2) {
      String msg = resp.body();
      try {
        JsonNode n = JSON.readTree(msg);
        if (n.hasNonNull("message")) {
          msg = n.get("message").asText();
        }
      } catch (Exception ignored) {
        // not JSON: the body as it is
      }
      throw new SparkException(method + " " + url + ": " + resp.statusCode() + ": " + msg.trim());
    }
  }
}
