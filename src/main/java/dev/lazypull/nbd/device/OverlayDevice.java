package dev.lazypull.nbd.device;

import dev.lazypull.nbd.server.ExportDevice;
import dev.lazypull.nbd.server.WritableDevice;
import dev.lazypull.overlay.Overlay;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * A writable export: an {@link Overlay} over a read-only base device (a lazily fetched image
 * device). Reads merge the overlay's dirty blocks, its zero blocks and the base; runs (structured
 * READ holes, BLOCK_STATUS) report zero blocks and the base's own zero runs as zeros. Several
 * connections may share it: they share the one overlay, whose flush covers every completed write.
 */
public final class OverlayDevice implements WritableDevice {
  private final ExportDevice base;
  private final Overlay overlay;

  public OverlayDevice(ExportDevice base, Overlay overlay) {
    if (base.size() != overlay.size()) {
      throw new IllegalArgumentException(
          "base of " + base.size() + " bytes, overlay of " + overlay.size());
    }
    this.base = base;
    this.overlay = overlay;
  }

  /** {@code device} as an overlay's base. */
  public static Overlay.Base baseOf(ExportDevice device) {
    return new Overlay.Base() {
      @Override
      public long size() {
        return device.size();
      }

      @Override
      public boolean isZero(long offset, long length) {
        List<ExportDevice.Run> runs = device.runs(offset, length);
        return runs.size() == 1 && runs.get(0).zero();
      }

      @Override
      public CompletableFuture<Void> prepare(long offset, long length) {
        return device.prepare(offset, length);
      }

      @Override
      public void read(long offset, ByteBuffer dst) throws IOException {
        device.read(offset, dst);
      }
    };
  }

  public Overlay overlay() {
    return overlay;
  }

  public ExportDevice base() {
    return base;
  }

  @Override
  public long size() {
    return overlay.size();
  }

  @Override
  public List<Run> runs(long offset, long length) {
    List<Run> out = new ArrayList<>();
    for (Overlay.Piece p : overlay.pieces(offset, length)) {
      switch (p.source()) {
        case DATA -> add(out, p.offset(), p.length(), false);
        case ZERO -> add(out, p.offset(), p.length(), true);
        case BASE -> {
          for (Run r : base.runs(p.offset(), p.length())) {
            add(out, r.offset(), r.length(), r.zero());
          }
        }
        default -> throw new IllegalStateException();
      }
    }
    return out;
  }

  private static void add(List<Run> out, long offset, long length, boolean zero) {
    if (!out.isEmpty()) {
      Run last = out.get(out.size() - 1);
      if (last.zero() == zero && last.end() == offset) {
        out.set(out.size() - 1, new Run(last.offset(), last.length() + length, zero));
        return;
      }
    }
    out.add(new Run(offset, length, zero));
  }

  @Override
  public CompletableFuture<Void> prepare(long offset, long length) {
    return overlay.prepare(offset, length);
  }

  @Override
  public void read(long offset, ByteBuffer dst) throws IOException {
    overlay.read(offset, dst);
  }

  @Override
  public CompletableFuture<Void> write(long offset, ByteBuffer data) {
    return overlay.write(offset, data);
  }

  @Override
  public CompletableFuture<Void> zero(long offset, long length) {
    return overlay.zero(offset, length);
  }

  @Override
  public void flush() throws IOException {
    overlay.flush();
  }

  @Override
  public boolean multiConn() {
    return true;
  }
}
