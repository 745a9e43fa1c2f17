package dev.lazypull.image;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Arrays;

/**
 * The chunk digest table of one data blob (docs/format.md): for every stored chunk in blob order its offset,
 * its length (whole 4 KiB blocks: the chunk's bytes plus the zero padding stored with it) and the sha256 of
 * those stored bytes. The entries tile the blob exactly, so a reader can verify any fetched range by whole
 * entries. Little-endian:
 *
 * <pre>
 *   0  8  magic "LPCHKDG1"
 *   8  4  version (1)
 *  12  4  block size (4096)
 *  16  8  blob size
 *  24  8  entry count
 *  32  48 × count: u64 offset, u32 length, u32 reserved (0), 32-byte sha256
 * </pre>
 *
 * <p>Decoding checks every field and the tiling; malformed input is an {@link InvalidImageException}.
 */
public final class ChunkDigestTable {
  public static final byte[] MAGIC = "LPCHKDG1".getBytes(StandardCharsets.US_ASCII);
  public static final int VERSION = 1;
  public static final int HEADER_SIZE = 32;
  public static final int ENTRY_SIZE = 48;
  public static final int BLOCK_SIZE = 4096;

  private final long blobSize;
  private final long[] offsets;
  private final int[] lengths;
  private final byte[] digests;

  private ChunkDigestTable(long blobSize, long[] offsets, int[] lengths, byte[] digests) {
    this.blobSize = blobSize;
    this.offsets = offsets;
    this.lengths = lengths;
    this.digests = digests;
  }

  /** The largest blob {@link #whole} covers: it is fetched and checked as one unit, in memory. */
  public static final int MAX_WHOLE_BYTES = 64 << 20;

  /**
   * A one-entry table covering all of {@code blob}, checked against the blob's own digest: how a bootstrap (the
   * image's metadata, which has no table of its own) is verified before a byte of it is cached. Null for a
   * blob over {@link #MAX_WHOLE_BYTES} or an empty one.
   */
  public static ChunkDigestTable whole(Descriptor blob) {
    if (blob.size() <= 0 || blob.size() > MAX_WHOLE_BYTES) {
      return null;
    }
    byte[] sha256 = java.util.HexFormat.of().parseHex(blob.digest().hex());
    return new ChunkDigestTable(blob.size(), new long[] {0}, new int[] {(int) blob.size()}, sha256);
  }

  public long blobSize() {
    return blobSize;
  }

  public int size() {
    return offsets.length;
  }

  public long offset(int i) {
    return offsets[i];
  }

  public int length(int i) {
    return lengths[i];
  }

  public byte[] sha256(int i) {
    return Arrays.copyOfRange(digests, i * 32, i * 32 + 32);
  }

  /** Index of the entry holding byte {@code pos} of the blob, or -1 outside it. */
  public int entryAt(long pos) {
    if (pos < 0 || pos >= blobSize) {
      return -1;
    }
    int i = Arrays.binarySearch(offsets, pos);
    return i >= 0 ? i : -i - 2;
  }

  /** True when {@code bytes} (the stored bytes of entry {@code i}) have its digest. */
  public boolean verify(int i, byte[] bytes, int off, int len) {
    if (len != lengths[i]) {
      return false;
    }
    MessageDigest md = Digest.sha256();
    md.update(bytes, off, len);
    return MessageDigest.isEqual(md.digest(), sha256(i));
  }

  /** True when {@code data}'s remaining bytes (the stored bytes of entry {@code i}) have its digest. */
  public boolean verify(int i, java.nio.ByteBuffer data) {
    if (data.remaining() != lengths[i]) {
      return false;
    }
    MessageDigest md = Digest.sha256();
    md.update(data.duplicate());
    byte[] got = md.digest();
    for (int k = 0; k < 32; k++) {
      if (got[k] != digests[i * 32 + k]) {
        return false;
      }
    }
    return true;
  }

  /** Builds a table as chunks are appended to a blob. */
  public static final class Builder {
    private long[] offsets = new long[64];
    private int[] lengths = new int[64];
    private byte[] digests = new byte[64 * 32];
    private int count;
    private long end;

    /** Appends the next chunk: {@code length} stored bytes (a multiple of the block size) with this digest. */
    public void add(int length, byte[] sha256) {
      if (length <= 0 || length % BLOCK_SIZE != 0 || sha256.length != 32) {
        throw new IllegalArgumentException("chunk of " + length + " bytes");
      }
      if (count == offsets.length) {
        offsets = Arrays.copyOf(offsets, count * 2);
        lengths = Arrays.copyOf(lengths, count * 2);
        digests = Arrays.copyOf(digests, count * 64);
      }
      offsets[count] = end;
      lengths[count] = length;
      System.arraycopy(sha256, 0, digests, count * 32, 32);
      count++;
      end += length;
    }

    public long blobSize() {
      return end;
    }

    public ChunkDigestTable build() {
      return new ChunkDigestTable(end, Arrays.copyOf(offsets, count), Arrays.copyOf(lengths, count),
          Arrays.copyOf(digests, count * 32));
    }
  }

  public byte[] encode() {
    ByteBuffer b = ByteBuffer.allocate(HEADER_SIZE + ENTRY_SIZE * offsets.length).order(ByteOrder.LITTLE_ENDIAN);
    b.put(MAGIC).putInt(VERSION).putInt(BLOCK_SIZE).putLong(blobSize).putLong(offsets.length);
    for (int i = 0; i < offsets.length; i++) {
      b.putLong(offsets[i]).putInt(lengths[i]).putInt(0).put(digests, i * 32, 32);
    }
    return b.array();
  }

  /** Decodes and validates a table; {@code expectedBlobSize} is the blob descriptor's size. */
  public static ChunkDigestTable decode(byte[] bytes, long expectedBlobSize) throws InvalidImageException {
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    if (bytes.length < HEADER_SIZE || !Arrays.equals(Arrays.copyOf(bytes, 8), MAGIC)) {
      throw new InvalidImageException("chunk digest table: bad magic");
    }
    int version = b.getInt(8);
    int block = b.getInt(12);
    long blobSize = b.getLong(16);
    long count = b.getLong(24);
    if (version != VERSION || block != BLOCK_SIZE) {
      throw new InvalidImageException("chunk digest table: version " + version + ", block size " + block);
    }
    if (count < 0 || count != (bytes.length - HEADER_SIZE) / ENTRY_SIZE
        || (bytes.length - HEADER_SIZE) % ENTRY_SIZE != 0) {
      throw new InvalidImageException("chunk digest table: " + count + " entries in " + bytes.length + " bytes");
    }
    if (blobSize != expectedBlobSize) {
      throw new InvalidImageException("chunk digest table covers " + blobSize + " bytes, the blob has "
          + expectedBlobSize);
    }
    int n = (int) count;
    long[] offsets = new long[n];
    int[] lengths = new int[n];
    byte[] digests = new byte[n * 32];
    long end = 0;
    for (int i = 0; i < n; i++) {
      int at = HEADER_SIZE + i * ENTRY_SIZE;
      offsets[i] = b.getLong(at);
      lengths[i] = b.getInt(at + 8);
      if (offsets[i] != end || lengths[i] <= 0 || lengths[i] % BLOCK_SIZE != 0 || b.getInt(at + 12) != 0) {
        throw new InvalidImageException("chunk digest table: entry " + i + " (offset " + offsets[i] + ", length "
            + lengths[i] + ") does not continue the blob at " + end);
      }
      end += lengths[i];
      b.get(at + 16, digests, i * 32, 32);
    }
    if (end != blobSize) {
      throw new InvalidImageException("chunk digest table entries end at " + end + ", blob size " + blobSize);
    }
    return new ChunkDigestTable(blobSize, offsets, lengths, digests);
  }
}
