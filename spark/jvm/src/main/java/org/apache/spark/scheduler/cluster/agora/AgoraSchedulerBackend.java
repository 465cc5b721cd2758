package org.apache.spark.scheduler.cluster.agora;

import java.io.File;
import java.io.FileInputStream;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
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
 * With the total go the pending tasks' preferred hosts (locality), as
 * Spark's ExecutorAllocationManager counted them.
 * Every decision (sizing, offers, placement, blocklisting) is the Go
 * scheduler's; this class only relays, as plain HTTP and JSON (written
 * here: the Jackson of a Spark home need not match its own databind).
 * A secured dispatcher gives its drivers a token (AGORA_SPARK_TOKEN), sent
 * as "Authorization: Bearer", and the CA of its certificate
 * (AGORA_SPARK_CA_FILE), with which the calls go over HTTPS.
 */
public class AgoraSchedulerBackend extends CoarseGrainedSchedulerBackend {
  private static final Pattern MESSAGE = Pattern.compile("\"message\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"");
  private static final Duration TIMEOUT = Duration.ofSeconds(30);

  private final SparkContext sc;
  private final String base;
  private final HttpClient http;
  /** The driver's token (AGORA_SPARK_TOKEN, given by a secured dispatcher), or null. */
  private final String token = System.getenv("AGORA_SPARK_TOKEN");
  private volatile String appId;

  public AgoraSchedulerBackend(TaskSchedulerImpl scheduler, SparkContext sc, String addr) {
    super(scheduler, sc.env().rpcEnv());
    this.sc = sc;
    String ca = System.getenv("AGORA_SPARK_CA_FILE");
    HttpClient.Builder b = HttpClient.newBuilder().connectTimeout(TIMEOUT);
    if (ca != null && !ca.isEmpty()) {
      b.sslContext(trusting(ca));
    }
    this.http = b.build();
    this.base = (ca != null && !ca.isEmpty() ? "https://" : "http://") + addr + "/v1/applications";
  }

  /** trusting is a TLS context that trusts the certificates of the PEM file ca, and only those. */
  static SSLContext trusting(String ca) {
    // A relative path is in the task's sandbox, where the dispatcher had it fetched.
    String sandbox = System.getenv("MESOS_SANDBOX");
    File f = new File(ca);
    if (!f.isAbsolute() && sandbox != null) {
      f = new File(sandbox, ca);
    }
    try (InputStream in = new FileInputStream(f)) {
      KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
      ks.load(null, null);
      int i = 0;
      for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
        ks.setCertificateEntry("ca" + i++, c);
      }
      if (i == 0) {
        throw new IllegalArgumentException("no certificate in it");
      }
      TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(ks);
      SSLContext ctx = SSLContext.getInstance("TLS");
      ctx.init(null, tmf.getTrustManagers(), null);
      return ctx;
    } catch (Exception e) {
      throw new IllegalArgumentException("AGORA_SPARK_CA_FILE " + ca + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void start() {
    super.start();
    appId = applicationId();
    List<String> conf = new ArrayList<>();
    for (Tuple2<String, String> kv : sc.conf().getAll()) {
      if (!kv._1().toLowerCase().matches(".*(secret|password|token).*")) {
        conf.add(quote(kv._1()) + ":" + quote(kv._2()));
      }
    }
    String req = "{\"appId\":" + quote(appId)
        + ",\"appName\":" + quote(sc.appName())
        + ",\"driverUrl\":" + quote("spark://" + CoarseGrainedSchedulerBackend.ENDPOINT_NAME() + "@"
            + sc.conf().get("spark.driver.host") + ":" + sc.conf().get("spark.driver.port"))
        + ",\"uiUrl\":" + quote(sc.uiWebUrl().isDefined() ? sc.uiWebUrl().get() : "")
        + ",\"conf\":{" + String.join(",", conf) + "}}";
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
    return relay("POST", base + "/" + appId + "/executors", "{\"total\":" + total
        + ",\"hostToLocalTaskCount\":" + hostToLocalTaskCount() + "}");
  }

  /** hostToLocalTaskCount is, as JSON, each preferred host's pending tasks over every resource profile. */
  private String hostToLocalTaskCount() {
    Map<String, Integer> hosts = new java.util.TreeMap<>();
    for (scala.collection.immutable.Map<String, Object> m
        : CollectionConverters.asJava(rpHostToLocalTaskCount()).values()) {
      for (Map.Entry<String, Object> e : CollectionConverters.asJava(m).entrySet()) {
        hosts.merge(e.getKey(), (Integer) e.getValue(), Integer::sum);
      }
    }
    List<String> out = new ArrayList<>();
    for (Map.Entry<String, Integer> e : hosts.entrySet()) {
      out.add(quote(e.getKey()) + ":" + e.getValue());
    }
    return "{" + String.join(",", out) + "}";
  }

  @Override
  public Future<Object> doKillExecutors(scala.collection.immutable.Seq<String> executorIds) {
    List<String> ids = new ArrayList<>();
    for (String id : CollectionConverters.asJava(executorIds)) {
      ids.add(quote(id));
    }
    return relay("POST", base + "/" + appId + "/kill", "{\"executorIds\":[" + String.join(",", ids) + "]}");
  }

  private Future<Object> relay(String method, String url, String body) {
    try {
      call(method, url, body);
      return Future.successful(Boolean.TRUE);
    } catch (SparkException e) {
      logWarning(() -> "agora's Spark scheduler: " + e.getMessage());
      return Future.successful(Boolean.FALSE);
    }
  }

  /** call sends one request; anything but a 2xx is an error with the scheduler's message. */
  private void call(String method, String url, String body) throws SparkException {
    HttpRequest.BodyPublisher pub = body == null
        ? HttpRequest.BodyPublishers.noBody()
        : HttpRequest.BodyPublishers.ofString(body);
    HttpRequest.Builder rb = HttpRequest.newBuilder(URI.create(url)).timeout(TIMEOUT)
        .header("Content-Type", "application/json").method(method, pub);
    if (token != null && !token.isEmpty()) {
      rb.header("Authorization", "Bearer " + token);
    }
    HttpRequest req = rb.build();
    HttpResponse<String> resp;
    try {
      resp = http.send(req, HttpResponse.BodyHandlers.ofString());
    } catch (Exception e) {
      throw new SparkException(method + " " + url + ": " + e);
    }
    if (resp.statusCode() / 100 != 2) {
      String msg = resp.body();
      Matcher m = MESSAGE.matcher(msg);
      if (m.find()) {
        msg = m.group(1).replaceAll("\\\\(.)", "$1");
      }
      throw new SparkException(method + " " + url + ": " + resp.statusCode() + ": " + msg.trim());
    }
  }

  /** quote is s as a JSON string. */
  static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      switch (c) {
        case '"': b.append("\\\""); break;
        case '\\': b.append("\\\\"); break;
        default:
          if (c < 0x20) {
            b.append(String.format("\\u%04x", (int) c));
          } else {
            b.append(c);
          }
      }
    }
    return b.append('"').toString();
  }
}
