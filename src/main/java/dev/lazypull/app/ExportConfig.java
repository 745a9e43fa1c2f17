package dev.lazypull.app;

import dev.lazypull.fetch.BlobCacheDir;
import dev.lazypull.fetch.FetchSettings;
import dev.lazypull.nbd.server.NbdServer;
import java.nio.file.Path;

/**
 * What an NBD export ({@link NbdExport}) is assembled from.
 *
 * @param image the image reference ({@code oci:DIR[:TAG]} or a registry reference)
 * @param blob one layer to export raw (a digest or unique hex prefix), or null for the flattened
 *     EROFS device
 * @param name the export name clients ask for (the image text when null)
 * @param cacheDir the host cache root ({@link BlobCacheDir}), shared with every process
 * @param listen {@code unix:PATH} or {@code tcp:HOST:PORT}, or null (a unix socket named after the
 *     image, or none when {@code device} is set)
 * @param device a kernel {@code /dev/nbdN} to attach, or null
 * @param connections sockets given to the kernel device
 * @param maxConnections client connections at once
 * @param cacheBudget bytes the cache may occupy, 0 for no budget
 * @param writable the export takes writes into this overlay, or null for a read-only export
 * @param control a control socket to serve (forks, live snapshots), or null
 * @param overlaysDir where overlays without a name of their own go (forks, and the export's own)
 */
public record ExportConfig(
    String image,
    String blob,
    String name,
    Path cacheDir,
    String listen,
    boolean allowRemote,
    String device,
    int connections,
    int maxConnections,
    FetchSettings fetch,
    long cacheBudget,
    Writable writable,
    Path control,
    Path overlaysDir) {
  public static final int DEFAULT_MAX_CONNECTIONS = NbdServer.Options.DEFAULT_MAX_CONNECTIONS;

  /** Where overlays go unless one is named: {@code <state dir>/overlays/<export>}. */
  public static final Path DEFAULT_OVERLAYS_DIR =
      DaemonConfig.DEFAULT_STATE_DIR.resolve("overlays");

  /**
   * A writable export's overlay.
   *
   * @param overlay the overlay directory, or null for {@code overlaysDir/<name>} (the export name,
   *     else the image's manifest digest)
   * @param overlaysDir where unnamed overlays go
   * @param blockSize bytes per block of a new overlay; 0 for the overlay's own (4 KiB for a new
   *     one)
   */
  public record Writable(Path overlay, Path overlaysDir, int blockSize) {}

  /** A read-only export of the same image. */
  public ExportConfig readOnly() {
    return new ExportConfig(
        image,
        blob,
        name,
        cacheDir,
        listen,
        allowRemote,
        device,
        connections,
        maxConnections,
        fetch,
        cacheBudget,
        null,
        control,
        overlaysDir);
  }

  /** Sockets given to a kernel device by default: one per CPU, at most four. */
  public static int defaultConnections() {
    return Math.min(4, Runtime.getRuntime().availableProcessors());
  }
}
