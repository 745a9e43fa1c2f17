package dev.lazypull.nbd.server;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The bytes an NBD export serves: a read-only address space of {@link #size()} bytes made of data
 * runs (fetched lazily) and zero runs. The server calls {@link #prepare} (never blocks) and, once
 * that completes, {@link #read} (blocking local I/O), so no reply is started before its bytes are
 * in hand.
 */
public interface ExportDevice {
  /** A run of the address space: all zeros, or data. */
  record Run(long offset, long length, boolean zero) {
    public long end() {
      return offset + length;
    }
  }

  long size();

  /**
   * The runs covering {@code [offset, offset+length)} (inside the device), in order, neighbours of
   * one kind merged.
   */
  List<Run> runs(long offset, long length);

  /**
   * Completes when every data byte of {@code [offset, offset+length)} can be read without fetching;
   * fails with the fetch error. Does no I/O on the calling thread.
   */
  CompletableFuture<Void> prepare(long offset, long length);

  /**
   * Fills {@code dst.remaining()} bytes starting at {@code offset} (zeros in zero runs), advancing
   * dst's position. The range must have been prepared; an unprepared range is an IOException, never
   * zeros.
   */
  void read(long offset, ByteBuffer dst) throws IOException;
}
