package dev.lazypull.index;

import dev.lazypull.blob.BlobSource;
import dev.lazypull.gzindex.GzipIndex;
import dev.lazypull.gzindex.SpanTable;
import dev.lazypull.gzindex.Zinfo;
import dev.lazypull.image.Descriptor;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The blobs of an image source, plus the virtual devices of side-car indexes: a descriptor of type
 * {@link IndexArtifact#DEVICE} is assembled by a {@link DeviceReader} from the layer its device map
 * names (the map, zinfo and span table are read — verified against their digests — from the local
 * {@link IndexStore} when it has them, else from the source, and kept in the store); any other blob
 * is read from the store when it holds it (indexes built here), else from the source. Devices are
 * loaded once per source and kept.
 */
public final class IndexedBlobSource implements BlobSource {
  private final BlobSource base;
  private final IndexStore store;
  private final SpanCache spans;
  private final Map<Descriptor, CompletableFuture<DeviceReader>> devices =
      new ConcurrentHashMap<>();

  /**
   * @param store the host's index store, or null (parts are then read from the source and kept in
   *     memory)
   */
  public IndexedBlobSource(BlobSource base, IndexStore store, SpanCache spans) {
    this.base = base;
    this.store = store;
    this.spans = spans;
  }

  public BlobSource base() {
    return base;
  }

  @Override
  public ReadableByteChannel openRange(Descriptor blob, long offset, long length)
      throws IOException {
    if (IndexArtifact.isDevice(blob)) {
      return device(blob).open(offset, length);
    }
    if (store != null && store.has(blob)) {
      return store.blobs().openRange(blob, offset, length);
    }
    return base.openRange(blob, offset, length);
  }

  @Override
  public ReadableByteChannel openRangeFromOrigin(Descriptor blob, long offset, long length)
      throws IOException {
    if (IndexArtifact.isDevice(blob) || (store != null && store.has(blob))) {
      return openRange(
          blob, offset, length); // layers inside are re-read from the origin span by span
    }
    return base.openRangeFromOrigin(blob, offset, length);
  }

  @Override
  public String describe() {
    return base.describe();
  }

  /**
   * The reader of a virtual device (loaded the first time; a failed load is tried again next time).
   */
  DeviceReader device(Descriptor device) throws IOException {
    CompletableFuture<DeviceReader> mine = new CompletableFuture<>();
    CompletableFuture<DeviceReader> f = devices.putIfAbsent(device, mine);
    if (f == null) {
      try {
        mine.complete(load(device));
      } catch (IOException | RuntimeException e) {
        devices.remove(device, mine);
        mine.completeExceptionally(e);
        throw e;
      }
      f = mine;
    }
    try {
      return f.join();
    } catch (CompletionException e) {
      Throwable c = e.getCause();
      throw c instanceof IOException io
          ? new IOException(io.getMessage(), io)
          : new IOException(String.valueOf(c), c);
    }
  }

  private DeviceReader load(Descriptor device) throws IOException {
    Descriptor mapDesc = IndexArtifact.mapOf(device);
    String what = "device " + device.digest().shortHex();
    DeviceMap map = DeviceMap.decode(small(mapDesc, "device map"));
    if (!map.deviceDigest().equals(device.digest()) || map.deviceSize() != device.size()) {
      throw new InvalidIndexException(
          what
              + ": its device map "
              + mapDesc.digest()
              + " describes device "
              + map.deviceDigest()
              + " of "
              + map.deviceSize()
              + " bytes");
    }
    if (!map.gzip()) {
      return new DeviceReader(map, DeviceReader.plain(map, base), what);
    }
    Descriptor spansDesc = new Descriptor(IndexArtifact.SPANS, map.spansDigest(), map.spansSize());
    SpanTable table = SpanTable.decode(small(spansDesc, "span table"));
    Descriptor zinfoDesc = new Descriptor(IndexArtifact.ZINFO, map.zinfoDigest(), map.zinfoSize());
    if (map.zinfoSize() > IndexArtifact.MAX_ZINFO_BYTES) {
      throw new InvalidIndexException(what + ": zinfo of " + map.zinfoSize() + " bytes");
    }
    Zinfo zinfo;
    if (store != null) {
      Path p = store.fetch(zinfoDesc, base);
      FileChannel ch =
          FileChannel.open(p, StandardOpenOption.READ); // open while the device is served
      try {
        zinfo = Zinfo.read(ch, table.compressedSize(), table.uncompressedSize());
      } catch (IOException | RuntimeException e) {
        ch.close();
        throw e;
      }
    } else {
      zinfo =
          Zinfo.read(
              base.readVerified(zinfoDesc, IndexArtifact.MAX_ZINFO_BYTES, "zinfo"),
              table.compressedSize(),
              table.uncompressedSize());
    }
    GzipIndex index = GzipIndex.of(zinfo, table);
    return new DeviceReader(map, DeviceReader.gzip(map, index, base, spans), what);
  }

  /**
   * A small part, verified: from the store (fetched into it first when it is missing), else from
   * the source.
   */
  private byte[] small(Descriptor d, String what) throws IOException {
    if (store != null) {
      store.fetch(d, base);
      return store.blobs().readVerified(d, IndexArtifact.MAX_DEVICE_MAP_BYTES, what);
    }
    return base.readVerified(d, IndexArtifact.MAX_DEVICE_MAP_BYTES, what);
  }
}
