package org.apache.spark.scheduler.cluster.agora;

import java.io.File;
import java.io.FileInputStream;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLHandshakeException;
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
 * Every decision (sizing, offers, placement, blocklisting, who may ask) is
 * the Go scheduler's; this class only relays, as plain HTTP and JSON
 * (written here: the Jackson of a Spark home need not match its own
 * databind), with the credentials it was given:
 * <ul>
 * <li>a driver a secured dispatcher launched has a token
 * (AGORA_SPARK_TOKEN), sent as "Authorization: Bearer", and the CA of the
 * dispatcher's certificate (AGORA_SPARK_CA_FILE), with which the calls go
 * over HTTPS;</li>
 * <li>any other driver (client mode) presents an operator's HTTP Basic
 * credentials if it is given them: spark.agora.principal (else
 * AGORA_PRINCIPAL) with the secret in the file spark.agora.secret.file
 * (else AGORA_SECRET, the secret itself), always over HTTPS, trusting
 * spark.agora.ssl.ca_file (else AGORA_SPARK_CA_FILE, else AGORA_CA_FILE,
 * else the JVM's trusted roots). A CA alone makes the calls HTTPS without
 * credentials.</li>
 * </ul>
 */
public class AgoraSchedulerBackend extends CoarseGrainedSchedulerBackend {
  private static final Pattern MESSAGE = Pattern.compile("\"message\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"");
  private static final Duration TIMEOUT = Duration.ofSeconds(30);

  /** The Spark configuration keys of a client-mode driver's credentials and CA. */
  public static final String PRINCIPAL_KEY = "spark.agora.principal";
  public static final String SECRET_FILE_KEY = "spark.agora.secret.file";
  public static final String CA_FILE_KEY = "spark.agora.ssl.ca_file";

  /** What a driver that called a TLS-only scheduler over plain HTTP is told. */
  private static final String HTTPS_HINT = "(a secured scheduler speaks HTTPS only: give " + CA_FILE_KEY + "=FILE, the CA"
      + " that signed its certificate, and an operator's " + PRINCIPAL_KEY + " and " + SECRET_FILE_KEY + ")";

  private final SparkContext sc;
  private final String addr;
  // Set by connect, at start.
  private volatile String base;
  private volatile HttpClient http;
  /** The Authorization header's value (a driver's token or Basic credentials), or null. */
  private volatile String authorization;
  private volatile String appId;

  public AgoraSchedulerBackend(TaskSchedulerImpl scheduler, SparkContext sc, String addr) {
    super(scheduler, sc.env().rpcEnv());
    this.sc = sc;
    this.addr = addr;
  }

  /**
   * connect reads the credentials and the CA (failing with a message that
   * names the setting and the file) and makes the client: the first thing
   * start does, so that bad settings fail the driver before anything runs.
   */
  private void connect() {
    String token = System.getenv("AGORA_SPARK_TOKEN");
    String ca = System.getenv("AGORA_SPARK_CA_FILE");
    String caWhat = "AGORA_SPARK_CA_FILE";
    boolean tls = notEmpty(ca);
    if (notEmpty(token)) {
      // A driver the dispatcher launched: what it was given, nothing else.
      this.authorization = "Bearer " + token;
    } else {
      String[] cred = credentials(sc.conf().get(PRINCIPAL_KEY, ""), sc.conf().get(SECRET_FILE_KEY, ""));
      this.authorization = cred == null ? null : basic(cred[0], cred[1]);
      String conf = sc.conf().get(CA_FILE_KEY, "");
      if (notEmpty(conf)) {
        ca = conf;
        caWhat = CA_FILE_KEY;
      } else if (!notEmpty(ca) && cred != null && notEmpty(System.getenv("AGORA_CA_FILE"))) {
        ca = System.getenv("AGORA_CA_FILE");
        caWhat = "AGORA_CA_FILE";
      }
      // Credentials go over TLS only.
      tls = notEmpty(ca) || cred != null;
    }
    HttpClient.Builder b = HttpClient.newBuilder().connectTimeout(TIMEOUT);
    if (notEmpty(ca)) {
      b.sslContext(trusting(caWhat, ca));
    }
    this.http = b.build();
    this.base = (tls ? "https://" : "http://") + addr + "/v1/applications";
  }

  private static boolean notEmpty(String s) {
    return s != null && !s.isEmpty();
  }

  /**
   * credentials are the principal and secret a driver without a token
   * presents, from the Spark configuration's principal and secretFile
   * (spark.agora.principal, spark.agora.secret.file), each else the
   * environment (AGORA_PRINCIPAL, AGORA_SECRET); null for none. A configured half
   * without the other, a secret in the configuration itself, or a secret
   * file that cannot be read or is empty fail the driver at start, naming
   * the key and the file. A principal from the environment without a
   * secret sends none (an open dispatcher needs none).
   */
  private String[] credentials(String principal, String secretFile) {
    if (notEmpty(sc.conf().get("spark.agora.secret", ""))) {
      throw new IllegalArgumentException("spark.agora.secret: the secret is not taken from Spark's configuration"
          + " (spark-submit's command line and the event log would show it): put it in a file readable only by you and give "
          + SECRET_FILE_KEY + "=FILE");
    }
    String secret = null;
    if (notEmpty(secretFile)) {
      if (!notEmpty(principal)) {
        principal = System.getenv("AGORA_PRINCIPAL");
      }
      if (!notEmpty(principal)) {
        throw new IllegalArgumentException(SECRET_FILE_KEY + "=" + secretFile + " needs " + PRINCIPAL_KEY
            + "=NAME (or AGORA_PRINCIPAL)");
      }
      try {
        secret = Files.readString(Path.of(secretFile)).replaceAll("[\\r\\n]+$", "");
      } catch (NoSuchFileException e) {
        throw new IllegalArgumentException(SECRET_FILE_KEY + " " + secretFile + ": no such file", e);
      } catch (AccessDeniedException e) {
        throw new IllegalArgumentException(SECRET_FILE_KEY + " " + secretFile + ": permission denied", e);
      } catch (Exception e) {
        throw new IllegalArgumentException(SECRET_FILE_KEY + " " + secretFile + ": cannot read it: " + e, e);
      }
      if (secret.isEmpty()) {
        throw new IllegalArgumentException(SECRET_FILE_KEY + " " + secretFile + " is empty");
      }
      return new String[] {principal, secret};
    }
    if (notEmpty(principal)) {
      secret = System.getenv("AGORA_SECRET");
      if (!notEmpty(secret)) {
        throw new IllegalArgumentException(PRINCIPAL_KEY + "=" + principal + " needs its secret: "
            + SECRET_FILE_KEY + "=FILE (or AGORA_SECRET)");
      }
      return new String[] {principal, secret};
    }
    principal = System.getenv("AGORA_PRINCIPAL");
    secret = System.getenv("AGORA_SECRET");
    if (notEmpty(principal) && notEmpty(secret)) {
      return new String[] {principal, secret};
    }
    if (notEmpty(principal)) {
      logWarning(() -> "AGORA_PRINCIPAL=" + System.getenv("AGORA_PRINCIPAL") + " is set without AGORA_SECRET (or "
          + SECRET_FILE_KEY + "): no credentials are sent to agora's Spark scheduler");
    }
    return null;
  }

  private static String basic(String principal, String secret) {
    return "Basic " + Base64.getEncoder().encodeToString((principal + ":" + secret).getBytes(StandardCharsets.UTF_8));
  }

  /**
   * trusting is a TLS context that trusts the certificates of the PEM file
   * ca, and only those; what names the setting it came from, for errors.
   */
  static SSLContext trusting(String what, String ca) {
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
      throw new IllegalArgumentException(what + " " + ca + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void start() {
    connect();
    super.start();
    String id = applicationId();
    List<String> conf = new ArrayList<>();
    for (Tuple2<String, String> kv : sc.conf().getAll()) {
      if (!kv._1().toLowerCase().matches(".*(secret|password|token).*")) {
        conf.add(quote(kv._1()) + ":" + quote(kv._2()));
      }
    }
    String req = "{\"appId\":" + quote(id)
        + ",\"appName\":" + quote(sc.appName())
        + ",\"driverUrl\":" + quote("spark://" + CoarseGrainedSchedulerBackend.ENDPOINT_NAME() + "@"
            + sc.conf().get("spark.driver.host") + ":" + sc.conf().get("spark.driver.port"))
        + ",\"uiUrl\":" + quote(sc.uiWebUrl().isDefined() ? sc.uiWebUrl().get() : "")
        + ",\"conf\":{" + String.join(",", conf) + "}}";
    try {
      call("POST", base, req);
    } catch (SparkException e) {
      // SparkContext stops the backend as it fails (stop: nothing to end
      // at the scheduler, appId being unset).
      throw new RuntimeException(e.getMessage(), e);
    }
    appId = id;
    logInfo(() -> "registered " + id + " with agora's Spark scheduler at " + base);
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
    if (authorization != null) {
      rb.header("Authorization", authorization);
    }
    HttpRequest req = rb.build();
    HttpResponse<String> resp;
    try {
      resp = http.send(req, HttpResponse.BodyHandlers.ofString());
    } catch (Exception e) {
      String hint = "";
      for (Throwable c = e; c != null; c = c.getCause()) {
        if (c instanceof SSLHandshakeException) {
          hint = " (is " + CA_FILE_KEY + " the CA that signed the scheduler's certificate?)";
          break;
        }
      }
      String m = String.valueOf(e.getMessage()).toLowerCase();
      if (url.startsWith("http:") && (m.contains("http1_0") || m.contains("reset") || m.contains("eof"))) {
        // Go's HTTP/1.0 answer on a TLS port, which the client may fail
        // to read, or its connection closed on the rest of the request.
        hint = " " + HTTPS_HINT;
      }
      throw new SparkException(method + " " + url + ": " + e + hint);
    }
    if (resp.statusCode() / 100 != 2) {
      String msg = resp.body();
      Matcher m = MESSAGE.matcher(msg);
      if (m.find()) {
        msg = m.group(1).replaceAll("\\\\(.)", "$1");
      }
      if (resp.statusCode() == 400 && msg.contains("HTTP request to an HTTPS server")) {
        // Go's answer on a TLS port: this scheduler is secured.
        msg = msg.trim() + " " + HTTPS_HINT;
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
