package dev.lazypull.testing;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;

/**
 * A fault-injecting HTTP/1.1 proxy for tests, in front of a real registry ({@link
 * DockerRegistryFixture}, or any HTTP server). Each request it receives is forwarded upstream
 * ({@code Connection: close}, the response read whole into memory) and the response is then sent
 * back as it came — or damaged by the {@link Fault} the {@link Schedule} picks for that request: a
 * reset, a delay, an error status, a cut, lying headers, flipped bits, a stall. {@link #down()}
 * closes the listener and every connection (clients get "connection refused") until {@link #up()}.
 *
 * <p>Client connections are kept alive between requests (as a registry's are), one thread per
 * connection. Only requests matching the fault filter (by default blob GETs) are damaged; others
 * always pass. Request bodies are forwarded by {@code Content-Length} only (pulls; push directly to
 * the registry).
 *
 * <p>Also runs standalone (the QEMU guest uses it): {@code java -cp target/test-classes FaultProxy
 * --listen 127.0.0.1:5000 --upstream 127.0.0.1:5001 [--seed N] [--rate R] [--faults A,B]}; {@code
 * GET /__fault/rate/R} changes the fault rate, {@code GET /__fault/stats} prints the counts, {@code
 * GET /__fault/upstream-errors} the number of requests that found the upstream down.
 */
public final class FaultProxy implements AutoCloseable {
  /** What happens to one request. */
  public enum Fault {
    /** Forwarded and answered faithfully. */
    NONE,
    /** The connection is reset (RST) once the request is read. */
    RESET,
    /** The status line comes after a delay. */
    SLOW_HEADERS,
    /** Half the body, a delay, the rest. */
    SLOW_BODY,
    /** HTTP 500 or 503 instead of the response. */
    SERVER_ERROR,
    /** HTTP 429 with {@code Retry-After: 0} or {@code 1}. */
    TOO_MANY_REQUESTS,
    /** An honest Content-Length, half the body, then the connection closes. */
    CLOSE_MID_BODY,
    /** A 206 whose {@code Content-Range} names another range than the one asked for. */
    WRONG_CONTENT_RANGE,
    /** A 206 whose body (and Content-Length) is shorter than its Content-Range promises. */
    SHORT_BODY,
    /**
     * More body than promised: extra bytes after a Content-Length body, or a close-delimited longer
     * body.
     */
    LONG_BODY,
    /** One to three bits of the body flipped; everything else intact. */
    CORRUPT,
    /** Nothing is sent back until the client gives up and closes. */
    STALL,
    /** Headers and half the body, then nothing until the client gives up. */
    STALL_MID_BODY;

    /**
     * Faults whose damage a client can see without knowing the content (everything but {@link
     * #CORRUPT}).
     */
    public static Set<Fault> detectableWithoutDigests() {
      return EnumSet.complementOf(EnumSet.of(NONE, CORRUPT));
    }

    public static Set<Fault> all() {
      return EnumSet.complementOf(EnumSet.of(NONE));
    }
  }

  /** Picks the fault for each request the filter selects. Called concurrently. */
  public interface Schedule {
    Fault next(String method, String path);

    static Schedule none() {
      return (m, p) -> Fault.NONE;
    }

    static Schedule always(Fault f) {
      return (m, p) -> f;
    }

    /**
     * With probability {@code rate} one of {@code faults}, uniformly; reproducible for a given
     * seed.
     */
    static Schedule random(long seed, double rate, Set<Fault> faults) {
      Random rnd = new Random(seed);
      Fault[] pick = faults.toArray(Fault[]::new);
      return (m, p) -> {
        synchronized (rnd) {
          return pick.length > 0 && rnd.nextDouble() < rate
              ? pick[rnd.nextInt(pick.length)]
              : Fault.NONE;
        }
      };
    }

    /** These faults in order for the next requests, then none. */
    static Schedule script(Fault... faults) {
      Iterator<Fault> it = List.of(faults).iterator();
      return (m, p) -> {
        synchronized (it) {
          return it.hasNext() ? it.next() : Fault.NONE;
        }
      };
    }
  }

  private static final int MAX_LINE = 16 << 10;
  private static final int MAX_HEADERS = 200;

  private final InetSocketAddress upstream;
  private final int port;
  private final Random damage;
  private final Map<Fault, AtomicLong> counts = new EnumMap<>(Fault.class);
  private final Set<Socket> connections = ConcurrentHashMap.newKeySet();
  private final AtomicLong requests = new AtomicLong();
  private final AtomicLong upstreamErrors = new AtomicLong();
  private volatile ServerSocket listener;
  private volatile Schedule schedule = Schedule.none();
  private volatile Predicate<String> faultable = p -> p.contains("/blobs/");
  private volatile int slowMillis = 200;

  /** The faults {@code /__fault/rate/R} schedules (standalone runs). */
  private volatile Set<Fault> controlFaults = Fault.all();

  private volatile boolean closed;

  private FaultProxy(InetSocketAddress upstream, ServerSocket listener, long seed) {
    this.upstream = upstream;
    this.listener = listener;
    this.port = listener.getLocalPort();
    this.damage = new Random(seed);
    for (Fault f : Fault.values()) {
      counts.put(f, new AtomicLong());
    }
    startAccepting(listener);
  }

  /** A proxy on 127.0.0.1 and a free port in front of {@code upstreamHost:upstreamPort}. */
  public static FaultProxy start(String upstreamHost, int upstreamPort, long seed)
      throws IOException {
    return start(
        new InetSocketAddress(InetAddress.getLoopbackAddress(), 0),
        new InetSocketAddress(upstreamHost, upstreamPort),
        seed);
  }

  /** In front of {@code registry}. */
  public static FaultProxy in(DockerRegistryFixture registry, long seed) throws IOException {
    String[] hp = registry.host().split(":");
    return start(hp[0], Integer.parseInt(hp[1]), seed);
  }

  public static FaultProxy start(InetSocketAddress listen, InetSocketAddress upstream, long seed)
      throws IOException {
    if (listen.getPort() != 0) {
      return new FaultProxy(upstream, bind(listen), seed);
    }
    // Not an ephemeral port: while the proxy is down, a client connecting to a free port in the
    // ephemeral range
    // can be given that same port as its source and connect to itself (TCP self-connect) instead of
    // refused.
    Random rnd = new Random();
    for (int attempt = 0; ; attempt++) {
      InetSocketAddress at = new InetSocketAddress(listen.getAddress(), 20000 + rnd.nextInt(12000));
      try {
        return new FaultProxy(upstream, bind(at), seed);
      } catch (BindException e) {
        if (attempt >= 100) {
          throw e;
        }
      }
    }
  }

  private static ServerSocket bind(InetSocketAddress at) throws IOException {
    ServerSocket s = new ServerSocket();
    try {
      s.setReuseAddress(true);
      s.bind(at, 128);
      return s;
    } catch (IOException e) {
      s.close();
      throw e;
    }
  }

  /** {@code 127.0.0.1:PORT}: the registry part of image references through the proxy. */
  public String host() {
    return listener.getInetAddress().getHostAddress() + ":" + port;
  }

  public void schedule(Schedule s) {
    this.schedule = s;
  }

  /** Which request paths may be damaged (default: those containing {@code /blobs/}). */
  public void faultable(Predicate<String> pathFilter) {
    this.faultable = pathFilter;
  }

  /** The delay of the slow faults; the actual one is random in {@code [millis/2, millis·3/2]}. */
  public void slowMillis(int millis) {
    this.slowMillis = millis;
  }

  /** How many requests got each fault (NONE: passed faithfully, including unfiltered ones). */
  public Map<Fault, Long> counts() {
    Map<Fault, Long> m = new EnumMap<>(Fault.class);
    counts.forEach((k, v) -> m.put(k, v.get()));
    return m;
  }

  public long requests() {
    return requests.get();
  }

  /**
   * Requests the upstream could not answer (refused, reset or closed early): how often an outage
   * was seen.
   */
  public long upstreamErrors() {
    return upstreamErrors.get();
  }

  /**
   * The registry goes away: the listener closes (connections are refused) and open connections
   * drop.
   */
  public synchronized void down() throws IOException {
    listener.close();
    dropConnections();
  }

  /** Back on the same port. */
  public synchronized void up() throws IOException {
    if (!listener.isClosed()) {
      return;
    }
    ServerSocket s = new ServerSocket();
    s.setReuseAddress(true);
    s.bind(new InetSocketAddress(listener.getInetAddress(), port), 128);
    listener = s;
    startAccepting(s);
  }

  private void dropConnections() {
    for (Socket c : connections) {
      reset(c);
    }
  }

  @Override
  public void close() {
    closed = true;
    try {
      listener.close();
    } catch (IOException e) {
      // closing anyway
    }
    dropConnections();
  }

  // ---- connections
  // ---------------------------------------------------------------------------------------

  private void startAccepting(ServerSocket s) {
    Thread t =
        new Thread(
            () -> {
              while (!s.isClosed()) {
                try {
                  Socket c = s.accept();
                  connections.add(c);
                  Thread h = new Thread(() -> serve(c), "fault-proxy-conn");
                  h.setDaemon(true);
                  h.start();
                } catch (IOException e) {
                  // listener closed (down() or close())
                }
              }
            },
            "fault-proxy-accept-" + port);
    t.setDaemon(true);
    t.start();
  }

  private void serve(Socket client) {
    try (client) {
      InputStream in = client.getInputStream();
      OutputStream out = client.getOutputStream();
      while (!closed) {
        Request req = Request.read(in);
        if (req == null) {
          return;
        }
        requests.incrementAndGet();
        if (req.path.startsWith("/__fault/")) {
          control(req, out);
          continue;
        }
        Fault f = faultable.test(req.path) ? schedule.next(req.method, req.path) : Fault.NONE;
        if (!handle(req, f, client, out) || req.close) {
          return;
        }
      }
    } catch (IOException e) {
      // the client went away, or down()/close() dropped it
    } finally {
      connections.remove(client);
    }
  }

  /** Answers one request with fault {@code f}; false when the connection must end. */
  private boolean handle(Request req, Fault f, Socket client, OutputStream out) throws IOException {
    if (f == Fault.RESET) {
      count(f);
      reset(client);
      return false;
    }
    if (f == Fault.STALL) {
      count(f);
      hold(client);
      return false;
    }
    Response r;
    try {
      r = forward(req);
    } catch (IOException e) {
      upstreamErrors.incrementAndGet();
      count(Fault.NONE); // the registry itself is down: its clients see the connection drop
      reset(client);
      return false;
    }
    boolean head = req.method.equals("HEAD");
    if (head || r.body.length == 0 || !applies(f, r)) {
      f =
          f == Fault.SERVER_ERROR || f == Fault.TOO_MANY_REQUESTS || f == Fault.SLOW_HEADERS
              ? f
              : Fault.NONE;
    }
    count(f);
    byte[] body = r.body;
    int half = body.length / 2;
    switch (f) {
      case SLOW_HEADERS -> {
        sleep(delay());
        write(out, r.status, r.headers, body, head);
      }
      case SLOW_BODY -> {
        write(out, r.status, r.headers, body.length, Arrays.copyOf(body, half));
        sleep(delay());
        out.write(body, half, body.length - half);
      }
      case SERVER_ERROR -> {
        int code = pick(2) == 0 ? 500 : 503;
        write(
            out,
            "HTTP/1.1 " + code + (code == 500 ? " Internal Server Error" : " Service Unavailable"),
            headers("Content-Type", "application/json"),
            errorBody("UNAVAILABLE", "injected"),
            head);
      }
      case TOO_MANY_REQUESTS ->
          write(
              out,
              "HTTP/1.1 429 Too Many Requests",
              headers("Content-Type", "application/json", "Retry-After", Integer.toString(pick(2))),
              errorBody("TOOMANYREQUESTS", "injected"),
              head);
      case CLOSE_MID_BODY -> {
        write(out, r.status, r.headers, body.length, Arrays.copyOf(body, half));
        out.flush();
        return false;
      }
      case WRONG_CONTENT_RANGE -> {
        ContentRange cr = ContentRange.of(r);
        long shift = cr.first >= 4096 ? -4096 : 4096;
        write(
            out,
            r.status,
            replace(
                r.headers,
                "Content-Range",
                "bytes " + (cr.first + shift) + "-" + (cr.last + shift) + "/" + cr.total),
            body,
            false);
      }
      case SHORT_BODY ->
          write(
              out,
              r.status,
              r.headers,
              Arrays.copyOf(body, body.length - 1 - pick(half + 1)),
              false);
      case LONG_BODY -> {
        byte[] extra = new byte[1 + pick(64)];
        synchronized (damage) {
          damage.nextBytes(extra);
        }
        if (pick(2) == 0) { // a Content-Length body followed by junk on the kept-alive connection
          write(out, r.status, r.headers, body, false);
          out.write(extra);
        } else { // no length: the body runs until the close, past the promised range
          writeHead(out, r.status, r.headers, -1, true);
          out.write(body);
          out.write(extra);
          out.flush();
          return false;
        }
      }
      case CORRUPT -> {
        byte[] bad = body.clone();
        int bits = 1 + pick(3);
        for (int i = 0; i < bits; i++) {
          int at = pick(bad.length);
          bad[at] ^= (byte) (1 << pick(8));
        }
        write(out, r.status, r.headers, bad, false);
      }
      case STALL_MID_BODY -> {
        write(out, r.status, r.headers, body.length, Arrays.copyOf(body, half));
        out.flush();
        hold(client);
        return false;
      }
      default -> write(out, r.status, r.headers, body, head);
    }
    out.flush();
    return true;
  }

  /** Whether {@code f} can damage this response (range faults need a 206 with a Content-Range). */
  private static boolean applies(Fault f, Response r) {
    if (f == Fault.WRONG_CONTENT_RANGE || f == Fault.SHORT_BODY) {
      return r.code == 206 && ContentRange.of(r) != null && r.body.length > 1;
    }
    return true;
  }

  private void count(Fault f) {
    counts.get(f).incrementAndGet();
  }

  private int pick(int bound) {
    synchronized (damage) {
      return bound <= 1 ? 0 : damage.nextInt(bound);
    }
  }

  private int delay() {
    int ms = slowMillis;
    return ms / 2 + pick(ms + 1);
  }

  /**
   * Keeps the connection open, sending nothing, until the client closes it or the proxy drops it.
   */
  private static void hold(Socket client) {
    try {
      client.setSoTimeout(0);
      InputStream in = client.getInputStream();
      byte[] sink = new byte[4096];
      while (in.read(sink) >= 0) {
        // a client that sends more while we stall is still stalled
      }
    } catch (IOException e) {
      // the client gave up
    }
  }

  private static void reset(Socket s) {
    try {
      s.setSoLinger(true, 0);
      s.close();
    } catch (IOException e) {
      // already gone
    }
  }

  private static void sleep(int ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void control(Request req, OutputStream out) throws IOException {
    String[] parts = req.path.split("/");
    String text;
    if (parts.length == 4 && parts[2].equals("rate")) {
      double rate = Double.parseDouble(parts[3]);
      schedule = Schedule.random(System.nanoTime(), rate, controlFaults);
      text = "rate " + rate + "\n";
    } else if (parts.length == 3 && parts[2].equals("upstream-errors")) {
      text = upstreamErrors.get() + "\n";
    } else {
      StringBuilder b = new StringBuilder();
      counts().forEach((k, v) -> b.append(k).append(' ').append(v).append('\n'));
      text = b.toString();
    }
    write(
        out,
        "HTTP/1.1 200 OK",
        headers("Content-Type", "text/plain"),
        text.getBytes(StandardCharsets.UTF_8),
        false);
    out.flush();
  }

  private static byte[] errorBody(String code, String message) {
    return ("{\"errors\":[{\"code\":\"" + code + "\",\"message\":\"" + message + "\"}]}")
        .getBytes(StandardCharsets.UTF_8);
  }

  // ---- upstream
  // ------------------------------------------------------------------------------------------

  private Response forward(Request req) throws IOException {
    try (Socket up = new Socket()) {
      up.connect(upstream, 2000);
      up.setSoTimeout(30_000);
      ByteArrayOutputStream head = new ByteArrayOutputStream();
      head.writeBytes(
          (req.method + " " + req.path + " HTTP/1.1\r\n").getBytes(StandardCharsets.ISO_8859_1));
      for (String[] h : req.headers) {
        if (!hopByHop(h[0])) {
          head.writeBytes((h[0] + ": " + h[1] + "\r\n").getBytes(StandardCharsets.ISO_8859_1));
        }
      }
      head.writeBytes("Connection: close\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
      OutputStream o = up.getOutputStream();
      o.write(head.toByteArray());
      o.write(req.body);
      o.flush();
      return Response.read(up.getInputStream(), req.method.equals("HEAD"));
    }
  }

  private static boolean hopByHop(String name) {
    String n = name.toLowerCase(Locale.ROOT);
    return n.equals("connection")
        || n.equals("keep-alive")
        || n.equals("proxy-connection")
        || n.equals("te")
        || n.equals("upgrade")
        || n.equals("transfer-encoding");
  }

  private static void write(
      OutputStream out, String status, List<String[]> headers, byte[] body, boolean head)
      throws IOException {
    writeHead(out, status, headers, head ? declaredLength(headers) : body.length, false);
    if (!head) {
      out.write(body);
    }
  }

  /** A head promising {@code promised} bytes, followed by {@code part} of them. */
  private static void write(
      OutputStream out, String status, List<String[]> headers, long promised, byte[] part)
      throws IOException {
    writeHead(out, status, headers, promised, false);
    out.write(part);
  }

  private static void writeHead(
      OutputStream out, String status, List<String[]> headers, long contentLength, boolean close)
      throws IOException {
    StringBuilder b = new StringBuilder(status).append("\r\n");
    for (String[] h : headers) {
      String n = h[0].toLowerCase(Locale.ROOT);
      if (!hopByHop(n) && !n.equals("content-length")) {
        b.append(h[0]).append(": ").append(h[1]).append("\r\n");
      }
    }
    if (contentLength >= 0) {
      b.append("Content-Length: ").append(contentLength).append("\r\n");
    }
    if (close) {
      b.append("Connection: close\r\n");
    }
    out.write(b.append("\r\n").toString().getBytes(StandardCharsets.ISO_8859_1));
  }

  private static List<String[]> headers(String... nameValue) {
    List<String[]> out = new ArrayList<>();
    for (int i = 0; i + 1 < nameValue.length; i += 2) {
      out.add(new String[] {nameValue[i], nameValue[i + 1]});
    }
    return out;
  }

  private static long declaredLength(List<String[]> headers) {
    String v = header(headers, "Content-Length");
    return v == null ? -1 : Long.parseLong(v.trim());
  }

  private static String header(List<String[]> headers, String name) {
    for (String[] h : headers) {
      if (h[0].equalsIgnoreCase(name)) {
        return h[1];
      }
    }
    return null;
  }

  private static List<String[]> replace(List<String[]> headers, String name, String value) {
    List<String[]> out = new ArrayList<>();
    for (String[] h : headers) {
      out.add(h[0].equalsIgnoreCase(name) ? new String[] {h[0], value} : h);
    }
    return out;
  }

  // ---- HTTP/1.1 messages
  // ---------------------------------------------------------------------------------

  private record Request(
      String method, String path, List<String[]> headers, byte[] body, boolean close) {
    /** The next request on a connection, or null at its end. */
    static Request read(InputStream in) throws IOException {
      String line = readLine(in);
      if (line == null) {
        return null;
      }
      String[] f = line.split(" ");
      if (f.length != 3 || !f[2].startsWith("HTTP/1.")) {
        throw new IOException("not an HTTP/1.x request line: " + line);
      }
      List<String[]> headers = readHeaders(in);
      if (header(headers, "Transfer-Encoding") != null) {
        throw new IOException("chunked request bodies are not supported by the fault proxy");
      }
      String cl = header(headers, "Content-Length");
      byte[] body = cl == null ? new byte[0] : readN(in, Integer.parseInt(cl.trim()));
      String conn = header(headers, "Connection");
      boolean close = f[2].equals("HTTP/1.0") || (conn != null && conn.equalsIgnoreCase("close"));
      return new Request(f[0], f[1], headers, body, close);
    }
  }

  private record Response(String status, int code, List<String[]> headers, byte[] body) {
    static Response read(InputStream in, boolean head) throws IOException {
      String status = readLine(in);
      if (status == null) {
        throw new EOFException("upstream closed without a response");
      }
      String[] f = status.split(" ", 3);
      int code = Integer.parseInt(f[1]);
      List<String[]> headers = readHeaders(in);
      byte[] body;
      String te = header(headers, "Transfer-Encoding");
      String cl = header(headers, "Content-Length");
      if (head || code == 204 || code == 304) {
        body = new byte[0];
      } else if (te != null && te.toLowerCase(Locale.ROOT).contains("chunked")) {
        body = readChunked(in);
      } else if (cl != null) {
        body = readN(in, Integer.parseInt(cl.trim()));
      } else {
        body = in.readAllBytes();
      }
      return new Response(status, code, headers, body);
    }
  }

  private record ContentRange(long first, long last, String total) {
    static ContentRange of(Response r) {
      String v = header(r.headers, "Content-Range");
      if (v == null || !v.startsWith("bytes ")) {
        return null;
      }
      String[] a = v.substring(6).split("[-/]");
      if (a.length != 3) {
        return null;
      }
      return new ContentRange(
          Long.parseLong(a[0].trim()), Long.parseLong(a[1].trim()), a[2].trim());
    }
  }

  private static List<String[]> readHeaders(InputStream in) throws IOException {
    List<String[]> headers = new ArrayList<>();
    while (true) {
      String h = readLine(in);
      if (h == null) {
        throw new EOFException("connection ended inside the headers");
      }
      if (h.isEmpty()) {
        return headers;
      }
      int colon = h.indexOf(':');
      if (colon <= 0 || headers.size() >= MAX_HEADERS) {
        throw new IOException("bad header line: " + h);
      }
      headers.add(new String[] {h.substring(0, colon).trim(), h.substring(colon + 1).trim()});
    }
  }

  private static byte[] readChunked(InputStream in) throws IOException {
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    while (true) {
      String size = readLine(in);
      if (size == null) {
        throw new EOFException("chunked body ended early");
      }
      int n = Integer.parseInt(size.split(";", 2)[0].trim(), 16);
      if (n == 0) {
        readHeaders(in); // trailers
        return body.toByteArray();
      }
      body.writeBytes(readN(in, n));
      readLine(in);
    }
  }

  private static byte[] readN(InputStream in, int n) throws IOException {
    byte[] b = in.readNBytes(n);
    if (b.length != n) {
      throw new EOFException("body ended after " + b.length + " of " + n + " bytes");
    }
    return b;
  }

  /** A CRLF- (or LF-) terminated line in ISO-8859-1; null at a clean end before any byte. */
  private static String readLine(InputStream in) throws IOException {
    StringBuilder b = new StringBuilder();
    while (true) {
      int c;
      try {
        c = in.read();
      } catch (SocketException e) {
        if (b.length() == 0) {
          return null;
        }
        throw e;
      }
      if (c < 0) {
        if (b.length() == 0) {
          return null;
        }
        throw new EOFException("line ended early");
      }
      if (c == '\n') {
        int len = b.length();
        return len > 0 && b.charAt(len - 1) == '\r' ? b.substring(0, len - 1) : b.toString();
      }
      if (b.length() >= MAX_LINE) {
        throw new IOException("line too long");
      }
      b.append((char) c);
    }
  }

  // ---- standalone
  // ----------------------------------------------------------------------------------------

  public static void main(String[] args) throws Exception {
    InetSocketAddress listen = null;
    InetSocketAddress up = null;
    long seed = 1;
    double rate = 0;
    Set<Fault> faults = Fault.all();
    int slow = 200;
    for (int i = 0; i + 1 < args.length; i += 2) {
      switch (args[i]) {
        case "--listen" -> listen = address(args[i + 1]);
        case "--upstream" -> up = address(args[i + 1]);
        case "--seed" -> seed = Long.parseLong(args[i + 1]);
        case "--rate" -> rate = Double.parseDouble(args[i + 1]);
        case "--slow-ms" -> slow = Integer.parseInt(args[i + 1]);
        case "--faults" -> {
          faults = EnumSet.noneOf(Fault.class);
          for (String f : args[i + 1].split(",")) {
            faults.add(Fault.valueOf(f.trim().toUpperCase(Locale.ROOT)));
          }
        }
        default -> throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    if (listen == null || up == null) {
      System.err.println(
          "usage: FaultProxy --listen HOST:PORT --upstream HOST:PORT [--seed N] [--rate R] "
              + "[--faults A,B] [--slow-ms MS]");
      System.exit(2);
    }
    FaultProxy p = start(listen, up, seed);
    p.slowMillis(slow);
    p.controlFaults = faults;
    p.schedule(Schedule.random(seed, rate, faults));
    System.out.println(
        "fault proxy on " + p.host() + " -> " + up + ", rate " + rate + ", faults " + faults);
    Thread.currentThread().join();
  }

  private static InetSocketAddress address(String hostPort) {
    int colon = hostPort.lastIndexOf(':');
    return new InetSocketAddress(
        hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
  }
}
