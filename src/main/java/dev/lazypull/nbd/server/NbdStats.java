package dev.lazypull.nbd.server;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;

/** Counters of one NBD server (all connections). */
public final class NbdStats {
  public final LongAdder connections = new LongAdder();
  public final LongAdder connectionsRefused = new LongAdder();
  public final LongAdder protocolErrors = new LongAdder();
  public final LongAdder requests = new LongAdder();
  public final LongAdder reads = new LongAdder();
  public final LongAdder readBytes = new LongAdder();

  /** READs answered with data already cached (served on the connection's own thread). */
  public final LongAdder readsWarm = new LongAdder();

  public final LongAdder readsFailed = new LongAdder();
  public final LongAdder blockStatus = new LongAdder();
  public final LongAdder writesRefused = new LongAdder();

  /**
   * Writable exports: WRITEs, their bytes, TRIMs and WRITE_ZEROES, FLUSHes, and write commands that
   * failed.
   */
  public final LongAdder writes = new LongAdder();

  public final LongAdder writeBytes = new LongAdder();
  public final LongAdder zeroes = new LongAdder();
  public final LongAdder flushes = new LongAdder();
  public final LongAdder writesFailed = new LongAdder();
  public final LongAdder invalidRequests = new LongAdder();

  public Map<String, Long> snapshot() {
    Map<String, Long> m = new LinkedHashMap<>();
    m.put("connections", connections.sum());
    m.put("connectionsRefused", connectionsRefused.sum());
    m.put("protocolErrors", protocolErrors.sum());
    m.put("requests", requests.sum());
    m.put("reads", reads.sum());
    m.put("readBytes", readBytes.sum());
    m.put("readsWarm", readsWarm.sum());
    m.put("readsFailed", readsFailed.sum());
    m.put("blockStatus", blockStatus.sum());
    m.put("writesRefused", writesRefused.sum());
    m.put("writes", writes.sum());
    m.put("writeBytes", writeBytes.sum());
    m.put("zeroes", zeroes.sum());
    m.put("flushes", flushes.sum());
    m.put("writesFailed", writesFailed.sum());
    m.put("invalidRequests", invalidRequests.sum());
    return m;
  }
}
