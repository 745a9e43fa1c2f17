package dev.lazypull.app;

import dev.lazypull.fetch.FetchSettings;
import dev.lazypull.nbd.server.NbdServer;
import java.nio.file.Path;

/**
 * What an NBD export ({@link NbdExport}) is assembled from.
 *
 * @param image the image reference ({@code oci:DIR[:TAG]} or a registry reference)
 * @param blob one layer to export raw (a digest or unique hex prefix), or null for the flattened EROFS device
 * @param name the export name clients ask for (the image text when null)
 * @param cacheDir the host cache root ({@link dev.lazypull.fetch.BlobCacheDir}), shared with every process
 * @param listen {@code unix:PATH} or {@code tcp:HOST:PORT}, or null (a unix socket named after the image, or
 *     none when {@code device} is set)
 * @param device a kernel {@code /dev/nbdN} to attach, or null
 * @param connections sockets given to the kernel device
 * @param maxConnections client connections at once
 * @param cacheBudget bytes the cache may occupy, 0 for no budget
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
    long cacheBudget) {
  public static final int DEFAULT_MAX_CONNECTIONS = NbdServer.Options.DEFAULT_MAX_CONNECTIONS;

  /** Sockets given to a kernel device by default: one per CPU, at most four. */
  public static int defaultConnections() {
    return Math.min(4, Runtime.getRuntime().availableProcessors());
  }
}
