package org.apache.spark.scheduler.cluster.agora;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertPathBuilderException;
import java.security.cert.CertPathValidatorException;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
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
 * spark.agora.ssl.ca_file (else AGORA_SPARK_CA_FILE, else, with
 * credentials, AGORA_CA_FILE, else the JVM's trusted roots).
 * spark.agora.ssl.ca_file or AGORA_SPARK_CA_FILE alone makes the calls
 * HTTPS without credentials; AGORA_CA_FILE alone does not (it is the
 * master's CA, which, as for the agora commands, only verifies).</li>
 * </ul>
 * Settings whose key or value matches spark.redaction.regex (Spark's
 * default: secret, password, token, access key), as Spark's own
 * redaction goes by either, and spark.agora.secret.file are left out of
 * the registration; the settings the scheduler starts executors with
 * (LAUNCH_KEYS, spark.executorEnv.*) are kept when only their value
 * matches, as the executors need them (their command carries them).
 */
public class AgoraSchedulerBackend extends CoarseGrainedSchedulerBackend {
  private static final Pattern MESSAGE = Pattern.compile("\"message\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"");
  private static final Duration TIMEOUT = Duration.ofSeconds(30);

  /** The Spark configuration keys of a client-mode driver's credentials and CA. */
  public static final String PRINCIPAL_KEY = "spark.agora.principal";
  public static final String SECRET_FILE_KEY = "spark.agora.secret.file";
  public static final String CA_FILE_KEY = "spark.agora.ssl.ca_file";

  /** The settings left out of a registration, as Spark's redaction. */
  public static final String REDACTION_KEY = "spark.redaction.regex";
  public static final String REDACTION_DEFAULT = "(?i)secret|password|token|access[.]?key";
  /**
   * The settings the scheduler starts executors with, kept in a
   * registration when only their value matches spark.redaction.regex
   * (-Djavax.net.ssl.trustStorePassword=... in extraJavaOptions): without
   * them the executors would start without what they need.
   */
  private static final Set<String> LAUNCH_KEYS = Set.of("spark.executor.extraJavaOptions", "spark.executor.uri",
      "spark.mesos.uris", "spark.mesos.executor.home");
  private static final String LAUNCH_ENV_PREFIX = "spark.executorEnv.";

  /** What a driver whose registration over plain HTTP failed is told, after "the scheduler is (or may be) a secured one". */
  private static final String HTTPS_ONLY = ", which speaks HTTPS only: give " + CA_FILE_KEY + "=FILE, the CA"
      + " that signed its certificate, and an operator's " + PRINCIPAL_KEY + " and " + SECRET_FILE_KEY;

  private final SparkContext sc;
  private final String addr;
  // Set by connect, at start.
  private volatile String base;
  private volatile HttpClient http;
  /** The Authorization header's value (a driver's token or Basic credentials), or null. */
  private volatile String authorization;
  /** The settings the Basic credentials came from (for messages), or null. */
  private volatile String credentialsFrom;
  /** The CA trusted and the setting it came from; null: the JVM's trusted roots. */
  private volatile String ca;
  private volatile String caWhat;
  /** Which settings are left out of a registration (spark.redaction.regex). */
  private volatile Pattern redaction;
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
    String regex = sc.conf().get(REDACTION_KEY, REDACTION_DEFAULT);
    try {
      this.redaction = Pattern.compile(regex);
    } catch (PatternSyntaxException e) {
      throw new IllegalArgumentException(REDACTION_KEY + "=" + regex + ": not a regular expression: " + e.getDescription(), e);
    }
    String token = System.getenv("AGORA_SPARK_TOKEN");
    String ca = System.getenv("AGORA_SPARK_CA_FILE");
    String caWhat = notEmpty(ca) ? "AGORA_SPARK_CA_FILE" : null;
    Credential cred = null;
    if (notEmpty(token)) {
      // A driver the dispatcher launched: what it was given, nothing else.
      this.authorization = "Bearer " + token;
    } else {
      cred = credentials(sc.conf().get(PRINCIPAL_KEY, ""), sc.conf().get(SECRET_FILE_KEY, ""));
      this.authorization = cred == null ? null : basic(cred.principal(), cred.secret());
      String conf = sc.conf().get(CA_FILE_KEY, "");
      if (notEmpty(conf)) {
        ca = conf;
        caWhat = CA_FILE_KEY;
      } else if (!notEmpty(ca) && cred != null && notEmpty(System.getenv("AGORA_CA_FILE"))) {
        // The master's CA, as the agora commands take it: it verifies the
        // HTTPS that credentials need, and alone makes nothing HTTPS.
        ca = System.getenv("AGORA_CA_FILE");
        caWhat = "AGORA_CA_FILE";
      }
    }
    HttpClient.Builder b = HttpClient.newBuilder().connectTimeout(TIMEOUT);
    if (notEmpty(ca)) {
      b.sslContext(trusting(caWhat, ca));
    }
    this.http = b.build();
    this.ca = notEmpty(ca) ? ca : null;
    this.caWhat = this.ca != null ? caWhat : null;
    this.credentialsFrom = cred == null ? null : cred.from();
    // Credentials go over HTTPS only; a CA of the Spark settings or the
    // dispatcher's makes the calls HTTPS too.
    boolean tls = cred != null || (caWhat != null && !caWhat.equals("AGORA_CA_FILE"));
    this.base = (tls ? "https://" : "http://") + addr + "/v1/applications";
  }

  private static boolean notEmpty(String s) {
    return s != null && !s.isEmpty();
  }

  /** A principal, its secret, and the settings they came from (for messages). */
  private record Credential(String principal, String secret, String from) {
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
  private Credential credentials(String principal, String secretFile) {
    if (notEmpty(sc.conf().get("spark.agora.secret", ""))) {
      throw new IllegalArgumentException("spark.agora.secret: the secret is not taken from Spark's configuration"
          + " (on spark-submit's command line, ps shows it to every user of the machine): put it in a file readable"
          + " only by you and give " + SECRET_FILE_KEY + "=FILE");
    }
    String secret = null;
    String principalWhat = PRINCIPAL_KEY;
    if (notEmpty(secretFile)) {
      if (!notEmpty(principal)) {
        principal = System.getenv("AGORA_PRINCIPAL");
        principalWhat = "AGORA_PRINCIPAL";
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
      return new Credential(principal, secret, principalWhat + " and " + SECRET_FILE_KEY);
    }
    if (notEmpty(principal)) {
      secret = System.getenv("AGORA_SECRET");
      if (!notEmpty(secret)) {
        throw new IllegalArgumentException(PRINCIPAL_KEY + "=" + principal + " needs its secret: "
            + SECRET_FILE_KEY + "=FILE (or AGORA_SECRET)");
      }
      return new Credential(principal, secret, PRINCIPAL_KEY + " and AGORA_SECRET");
    }
    principal = System.getenv("AGORA_PRINCIPAL");
    secret = System.getenv("AGORA_SECRET");
    if (notEmpty(principal) && notEmpty(secret)) {
      return new Credential(principal, secret, "AGORA_PRINCIPAL and AGORA_SECRET");
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
      // As Spark's Utils.redact, the value too: it may hold a secret under
      // a key that does not say so (-Dx.password=...), but for the
      // settings executors are started with.
      String k = kv._1();
      boolean launch = LAUNCH_KEYS.contains(k) || k.startsWith(LAUNCH_ENV_PREFIX);
      if (!redaction.matcher(k).find() && (launch || !redaction.matcher(kv._2()).find()) && !k.equals(SECRET_FILE_KEY)) {
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
      throw new RuntimeException(e.getMessage() + registrationHint(e), e);
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

  /**
   * registrationHint is what to add to the failure e of the registration,
   * the first call (a later call that fails says only what happened):
   * which setting to give, or to unset, when the driver and the scheduler
   * do not agree on HTTPS or on the CA. A connection refused or a timeout
   * gets none.
   */
  private String registrationHint(SparkException e) {
    boolean plain = base.startsWith("http:");
    Throwable cause = e.getCause();
    if (cause == null) {
      // An answer: Go's to plain HTTP on a TLS port says what it is.
      return plain && e.getMessage().contains("HTTP request to an HTTPS server")
          ? " (the scheduler is a secured one" + HTTPS_ONLY + ")" : "";
    }
    if (!(cause instanceof IOException) || cause instanceof HttpTimeoutException
        || causedBy(cause, ConnectException.class)) {
      return "";
    }
    if (plain) {
      // Go answers plain HTTP on a TLS port with a bare HTTP/1.0 400 and
      // closes, which Java's client may fail to read (or find reset).
      return " (the scheduler may be a secured one" + HTTPS_ONLY + ")";
    }
    if (causedBy(cause, CertificateException.class, CertPathBuilderException.class, CertPathValidatorException.class)) {
      if (caWhat == null) {
        return " (the JVM's trusted roots do not verify the scheduler's certificate: give " + CA_FILE_KEY
            + "=FILE, the CA that signed it)";
      }
      return " (is " + caWhat + "=" + ca + " the CA that signed the scheduler's certificate?)";
    }
    // Another failure over HTTPS: a plain-HTTP (open) scheduler answers
    // no TLS (Java: "Unrecognized SSL message", or the handshake cut short).
    String why = credentialsFrom != null
        ? "the credentials of " + credentialsFrom + " are sent over HTTPS only: for an open scheduler unset them"
        : "with " + caWhat + " the calls are HTTPS: for an open scheduler leave it out";
    return " (the scheduler at " + addr + " may speak plain HTTP, as an open one does; " + why
        + ", or give the scheduler TLS)";
  }

  @SafeVarargs
  private static boolean causedBy(Throwable t, Class<? extends Throwable>... kinds) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      for (Class<? extends Throwable> k : kinds) {
        if (k.isInstance(c)) {
          return true;
        }
      }
    }
    return false;
  }

  /**
   * call sends one request; anything but a 2xx is an error with the
   * scheduler's message, a request that failed one whose cause is the
   * client's exception.
   */
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
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new SparkException(method + " " + url + ": interrupted", e);
    } catch (Exception e) {
      throw new SparkException(method + " " + url + ": " + e, e);
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
