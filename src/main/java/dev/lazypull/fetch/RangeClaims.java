package dev.lazypull.fetch;

import java.io.IOException;

/**
 * Claims on byte ranges of a cache file that several processes fill: a process fetches a range only
 * while it holds the claim, and first looks whether another process has filled it meanwhile, so
 * each chunk is fetched once on the host. A claim is held for at most one ranged fetch, so nobody
 * waits for longer than that; claims of one process never conflict with each other (the fetcher
 * deduplicates its own threads first).
 */
public interface RangeClaims {
  /** Claims {@code [offset, offset+length)} if no other process holds any of it. */
  boolean tryClaim(long offset, long length) throws IOException;

  /** Claims {@code [offset, offset+length)}, waiting while another process holds any of it. */
  void claim(long offset, long length) throws IOException;

  /** Releases a claim taken by this process (never throws: a failed release is logged). */
  void release(long offset, long length);

  /** Whether another process holds a claim on part of the range. */
  boolean claimedElsewhere(long offset, long length) throws IOException;
}
