package dev.lazypull.image;

import dev.lazypull.compress.Compression;
import dev.lazypull.compress.CorruptFrameException;
import dev.lazypull.compress.ZstdCodec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * The chunk digest table of one data blob (docs/format.md). For every chunk in blob order: its
 * offset and length in the blob's <em>uncompressed</em> bytes (the EROFS device the bootstrap's
 * chunk indexes address; whole 4 KiB blocks: the chunk plus its zero padding) and the sha256 of
 * those uncompressed bytes. The entries tile the device exactly, so a reader can verify any range
 * by whole entries.
 *
 * <p>Version 1 describes a raw blob: the stored bytes are the uncompressed ones, so {@link
 * #compressedOffset} and {@link #compressedLength} equal {@link #offset} and {@link #length} and
 * {@link #storedSize} equals {@link #blobSize}. Version 2 describes a blob of independently
 * compressed chunks (one zstd frame each): it also records where each chunk's frame lies in the
 * stored blob; the frames tile the stored blob exactly, in the same order. Little-endian:
 *
 * <pre>
 * version 1                                   version 2
 *   0  8  magic "LPCHKDG1"                      0  8  magic "LPCHKDG1"
 *   8  4  version (1)                           8  4  version (2)
 *  12  4  block size (4096)                    12  4  block size (4096)
 *  16  8  blob size                            16  8  uncompressed size (the device size)
 *  24  8  entry count                          24  8  entry count
 *  32  48 × count:                             32  8  stored size (the blob descriptor's size)
 *        u64 offset, u32 length,               40  4  compression (1 = zstd)
 *        u32 reserved (0), sha256              44  4  reserved (0)
 *                                              48  56 × count: u64 offset, u32 length, u32 stored length,
 *                                                    u64 stored offset, sha256 (of the uncompressed bytes)
 * </pre>
 *
 * <p>Decoding checks every field, both tilings and the bounds (a version 2 entry is at most {@link
 * #MAX_COMPRESSED_ENTRY} uncompressed bytes and its frame at most {@link ZstdCodec#maxFrameLength}
 * of that), so what a reader allocates for one entry is bounded whatever the input; malformed input
 * is an {@link InvalidImageException}.
 */
public final class ChunkDigestTable {
  public static final byte[] MAGIC = "LPCHKDG1".getBytes(StandardCharsets.US_ASCII);

  /** Version 1: a raw blob. */
  public static final int VERSION = 1;

  /** Version 2: a blob of compressed chunks. */
  public static final int VERSION_COMPRESSED = 2;

  public static final int HEADER_SIZE = 32;
  public static final int ENTRY_SIZE = 48;
  public static final int HEADER_SIZE_V2 = 48;
  public static final int ENTRY_SIZE_V2 = 56;
  public static final int BLOCK_SIZE = 4096;

  /**
   * Largest uncompressed entry of a version 2 table (the largest chunk size): a reader decompresses
   * whole entries into memory, so this bounds that memory.
   */
  public static final int MAX_COMPRESSED_ENTRY = 16 << 20;

  private final Compression compression;
  private final long blobSize;
  private final long storedSize;
  private final long[] offsets;
  private final int[] lengths;

  /** Version 2 only (null for version 1). */
  private final long[] storedOffsets;

  private final int[] storedLengths;
  private final byte[] digests;

  private ChunkDigestTable(
      Compression compression,
      long blobSize,
      long storedSize,
      long[] offsets,
      int[] lengths,
      long[] storedOffsets,
      int[] storedLengths,
      byte[] digests) {
    this.compression = compression;
    this.blobSize = blobSize;
    this.storedSize = storedSize;
    this.offsets = offsets;
    this.lengths = lengths;
    this.storedOffsets = storedOffsets;
    this.storedLengths = storedLengths;
    this.digests = digests;
  }

  /** The largest blob {@link #whole} covers: it is fetched and checked as one unit, in memory. */
  public static final int MAX_WHOLE_BYTES = 64 << 20;

  /**
   * A one-entry table covering all of {@code blob}, checked against the blob's own digest: how a
   * bootstrap (the image's metadata, which has no table of its own) is verified before a byte of it
   * is cached. Null for a blob over {@link #MAX_WHOLE_BYTES} or an empty one.
   */
  public static ChunkDigestTable whole(Descriptor blob) {
    if (blob.size() <= 0 || blob.size() > MAX_WHOLE_BYTES) {
      return null;
    }
    byte[] sha256 = HexFormat.of().parseHex(blob.digest().hex());
    return new ChunkDigestTable(
        Compression.NONE,
        blob.size(),
        blob.size(),
        new long[] {0},
        new int[] {(int) blob.size()},
        null,
        null,
        sha256);
  }

  /** The table's format version: 1 (raw blob) or 2 (compressed chunks). */
  public int version() {
    return storedOffsets == null ? VERSION : VERSION_COMPRESSED;
  }

  /** How the chunks are stored: {@link Compression#NONE} for version 1. */
  public Compression compression() {
    return compression;
  }

  /** True for a version 2 table: each entry is stored as one zstd frame. */
  public boolean isCompressed() {
    return storedOffsets != null;
  }

  /** The uncompressed size: the EROFS device size, which cache files and chunk indexes address. */
  public long blobSize() {
    return blobSize;
  }

  /**
   * The size of the blob as stored (its descriptor's size): {@link #blobSize} for a version 1
   * table.
   */
  public long storedSize() {
    return storedSize;
  }

  public int size() {
    return offsets.length;
  }

  /** Entry {@code i}'s offset in the uncompressed device. */
  public long offset(int i) {
    return offsets[i];
  }

  /** Entry {@code i}'s uncompressed length: a multiple of 4096. */
  public int length(int i) {
    return lengths[i];
  }

  /**
   * Where entry {@code i}'s stored bytes (its frame, or the raw bytes for version 1) start in the
   * blob.
   */
  public long compressedOffset(int i) {
    return storedOffsets == null ? offsets[i] : storedOffsets[i];
  }

  /** How many stored bytes entry {@code i} takes in the blob. */
  public int compressedLength(int i) {
    return storedLengths == null ? lengths[i] : storedLengths[i];
  }

  /** The end (exclusive) of entry {@code i}'s stored bytes: entry {@code i + 1} starts there. */
  public long compressedEnd(int i) {
    return compressedOffset(i) + compressedLength(i);
  }

  /**
   * The largest uncompressed entry length (0 for an empty table): what one decompression buffer
   * needs.
   */
  public int maxLength() {
    int m = 0;
    for (int l : lengths) {
      m = Math.max(m, l);
    }
    return m;
  }

  public byte[] sha256(int i) {
    return Arrays.copyOfRange(digests, i * 32, i * 32 + 32);
  }

  /** Index of the entry holding byte {@code pos} of the uncompressed device, or -1 outside it. */
  public int entryAt(long pos) {
    if (pos < 0 || pos >= blobSize) {
      return -1;
    }
    int i = Arrays.binarySearch(offsets, pos);
    return i >= 0 ? i : -i - 2;
  }

  /** True when {@code bytes} (the uncompressed bytes of entry {@code i}) have its digest. */
  public boolean verify(int i, byte[] bytes, int off, int len) {
    if (len != lengths[i]) {
      return false;
    }
    MessageDigest md = Digest.sha256();
    md.update(bytes, off, len);
    return MessageDigest.isEqual(md.digest(), sha256(i));
  }

  /**
   * True when {@code data}'s remaining bytes (the uncompressed bytes of entry {@code i}) have its
   * digest.
   */
  public boolean verify(int i, ByteBuffer data) {
    if (data.remaining() != lengths[i]) {
      return false;
    }
    byte[] got = Digest.sha256Of(data);
    for (int k = 0; k < 32; k++) {
      if (got[k] != digests[i * 32 + k]) {
        return false;
      }
    }
    return true;
  }

  /**
   * Turns entry {@code i}'s stored bytes ({@code stored}'s remaining bytes: exactly {@link
   * #compressedLength}{@code (i)} of them, as fetched from {@link #compressedOffset}{@code (i)})
   * into its verified uncompressed bytes, written into {@code dst} (direct, at least {@link
   * #length}{@code (i)} bytes remaining) at its position, which advances by {@code length(i)};
   * {@code stored} is consumed. A version 1 entry is copied; a version 2 entry is decompressed,
   * never past {@code length(i)} bytes.
   *
   * @throws ChunkDataException when the frame does not decode to exactly {@code length(i)} bytes or
   *     the bytes do not have the entry's sha256: an integrity failure of the fetched bytes. Bytes
   *     may have been written into {@code dst}'s range [position, position + length(i)) even then;
   *     they must not be used.
   */
  public void unpack(int i, ByteBuffer stored, ByteBuffer dst) throws ChunkDataException {
    int len = lengths[i];
    if (stored.remaining() != compressedLength(i)) {
      throw new ChunkDataException(
          i,
          describe(i)
              + ": "
              + stored.remaining()
              + " stored bytes, expected "
              + compressedLength(i));
    }
    if (dst.remaining() < len) {
      throw new IllegalArgumentException(
          "destination has " + dst.remaining() + " bytes, entry " + i + " needs " + len);
    }
    int start = dst.position();
    if (isCompressed()) {
      try {
        ZstdCodec.decompress(stored, dst, len);
      } catch (CorruptFrameException e) {
        throw new ChunkDataException(i, describe(i) + ": " + e.getMessage());
      }
    } else {
      dst.put(stored);
    }
    ByteBuffer out = dst.duplicate().position(start).limit(start + len);
    if (!verify(i, out)) {
      throw new ChunkDataException(i, describe(i) + ": sha256 mismatch");
    }
  }

  private String describe(int i) {
    return isCompressed()
        ? "chunk "
            + i
            + " (bytes "
            + offsets[i]
            + "+"
            + lengths[i]
            + ", stored at "
            + storedOffsets[i]
            + "+"
            + storedLengths[i]
            + ")"
        : "chunk " + i + " (bytes " + offsets[i] + "+" + lengths[i] + ")";
  }

  /** Builds a table as chunks are appended to a blob. */
  public static final class Builder {
    private final Compression compression;
    private long[] offsets = new long[64];
    private int[] lengths = new int[64];
    private long[] storedOffsets = new long[64];
    private int[] storedLengths = new int[64];
    private byte[] digests = new byte[64 * 32];
    private int count;
    private long end;
    private long storedEnd;

    /** A version 1 table (raw chunks). */
    public Builder() {
      this(Compression.NONE);
    }

    /** A version 1 table for {@link Compression#NONE}, else a version 2 table. */
    public Builder(Compression compression) {
      this.compression = compression;
    }

    public Compression compression() {
      return compression;
    }

    /**
     * Appends the next raw chunk: {@code length} bytes (a multiple of the block size) with this
     * digest.
     */
    public void add(int length, byte[] sha256) {
      if (compression != Compression.NONE) {
        throw new IllegalStateException("a compressed table needs each chunk's stored length");
      }
      append(length, length, sha256);
    }

    /**
     * Appends the next compressed chunk: {@code length} uncompressed bytes (a multiple of the block
     * size, at most {@link #MAX_COMPRESSED_ENTRY}) with this digest, stored as a frame of {@code
     * storedLength} bytes.
     */
    public void add(int length, int storedLength, byte[] sha256) {
      if (compression == Compression.NONE) {
        throw new IllegalStateException("a raw table has no stored lengths");
      }
      if (length > MAX_COMPRESSED_ENTRY
          || storedLength <= 0
          || storedLength > ZstdCodec.maxFrameLength(length)) {
        throw new IllegalArgumentException(
            "chunk of " + length + " bytes stored in " + storedLength);
      }
      append(length, storedLength, sha256);
    }

    private void append(int length, int storedLength, byte[] sha256) {
      if (length <= 0 || length % BLOCK_SIZE != 0 || sha256.length != 32) {
        throw new IllegalArgumentException("chunk of " + length + " bytes");
      }
      if (count == offsets.length) {
        offsets = Arrays.copyOf(offsets, count * 2);
        lengths = Arrays.copyOf(lengths, count * 2);
        storedOffsets = Arrays.copyOf(storedOffsets, count * 2);
        storedLengths = Arrays.copyOf(storedLengths, count * 2);
        digests = Arrays.copyOf(digests, count * 64);
      }
      offsets[count] = end;
      lengths[count] = length;
      storedOffsets[count] = storedEnd;
      storedLengths[count] = storedLength;
      System.arraycopy(sha256, 0, digests, count * 32, 32);
      count++;
      end += length;
      storedEnd += storedLength;
    }

    /** The uncompressed size so far: where the next chunk starts in the device. */
    public long blobSize() {
      return end;
    }

    /** The stored size so far: where the next chunk's stored bytes start in the blob. */
    public long storedSize() {
      return storedEnd;
    }

    public ChunkDigestTable build() {
      boolean raw = compression == Compression.NONE;
      return new ChunkDigestTable(
          compression,
          end,
          storedEnd,
          Arrays.copyOf(offsets, count),
          Arrays.copyOf(lengths, count),
          raw ? null : Arrays.copyOf(storedOffsets, count),
          raw ? null : Arrays.copyOf(storedLengths, count),
          Arrays.copyOf(digests, count * 32));
    }
  }

  public byte[] encode() {
    int n = offsets.length;
    if (!isCompressed()) {
      ByteBuffer b =
          ByteBuffer.allocate(HEADER_SIZE + ENTRY_SIZE * n).order(ByteOrder.LITTLE_ENDIAN);
      b.put(MAGIC).putInt(VERSION).putInt(BLOCK_SIZE).putLong(blobSize).putLong(n);
      for (int i = 0; i < n; i++) {
        b.putLong(offsets[i]).putInt(lengths[i]).putInt(0).put(digests, i * 32, 32);
      }
      return b.array();
    }
    ByteBuffer b =
        ByteBuffer.allocate(HEADER_SIZE_V2 + ENTRY_SIZE_V2 * n).order(ByteOrder.LITTLE_ENDIAN);
    b.put(MAGIC)
        .putInt(VERSION_COMPRESSED)
        .putInt(BLOCK_SIZE)
        .putLong(blobSize)
        .putLong(n)
        .putLong(storedSize)
        .putInt(compression.code())
        .putInt(0);
    for (int i = 0; i < n; i++) {
      b.putLong(offsets[i])
          .putInt(lengths[i])
          .putInt(storedLengths[i])
          .putLong(storedOffsets[i])
          .put(digests, i * 32, 32);
    }
    return b.array();
  }

  /**
   * Decodes and validates the table of {@code blob}: its stored size must be the descriptor's size,
   * a compressed blob ({@link LazyImage#isCompressed}) needs a version 2 table whose uncompressed
   * size is the descriptor's {@link LazyImage#deviceSize}, a raw blob a version 1 table. What
   * readers should call.
   */
  public static ChunkDigestTable decode(byte[] bytes, Descriptor blob)
      throws InvalidImageException {
    ChunkDigestTable t = decode(bytes, blob.size());
    boolean compressed = LazyImage.isCompressed(blob);
    if (t.isCompressed() != compressed) {
      throw new InvalidImageException(
          "chunk digest table version "
              + t.version()
              + " for "
              + blob.mediaType()
              + " blob "
              + blob.digest());
    }
    long device = LazyImage.deviceSize(blob);
    if (t.blobSize() != device) {
      throw new InvalidImageException(
          "chunk digest table covers "
              + t.blobSize()
              + " uncompressed bytes, blob "
              + blob.digest()
              + " declares "
              + device);
    }
    return t;
  }

  /**
   * Decodes and validates a table of either version; {@code expectedStoredSize} is the blob
   * descriptor's size (the stored size: for a version 1 table also the uncompressed size).
   */
  public static ChunkDigestTable decode(byte[] bytes, long expectedStoredSize)
      throws InvalidImageException {
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    if (bytes.length < HEADER_SIZE || !Arrays.equals(Arrays.copyOf(bytes, 8), MAGIC)) {
      throw new InvalidImageException("chunk digest table: bad magic");
    }
    int version = b.getInt(8);
    int block = b.getInt(12);
    if ((version != VERSION && version != VERSION_COMPRESSED) || block != BLOCK_SIZE) {
      throw new InvalidImageException(
          "chunk digest table: version " + version + ", block size " + block);
    }
    return version == VERSION
        ? decodeV1(b, bytes.length, expectedStoredSize)
        : decodeV2(b, bytes.length, expectedStoredSize);
  }

  private static ChunkDigestTable decodeV1(ByteBuffer b, int total, long expectedBlobSize)
      throws InvalidImageException {
    long blobSize = b.getLong(16);
    long count = b.getLong(24);
    if (count < 0
        || count != (total - HEADER_SIZE) / ENTRY_SIZE
        || (total - HEADER_SIZE) % ENTRY_SIZE != 0) {
      throw new InvalidImageException(
          "chunk digest table: " + count + " entries in " + total + " bytes");
    }
    if (blobSize != expectedBlobSize) {
      throw new InvalidImageException(
          "chunk digest table covers " + blobSize + " bytes, the blob has " + expectedBlobSize);
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
      if (offsets[i] != end
          || lengths[i] <= 0
          || lengths[i] % BLOCK_SIZE != 0
          || b.getInt(at + 12) != 0) {
        throw new InvalidImageException(
            "chunk digest table: entry "
                + i
                + " (offset "
                + offsets[i]
                + ", length "
                + lengths[i]
                + ") does not continue the blob at "
                + end);
      }
      end += lengths[i];
      b.get(at + 16, digests, i * 32, 32);
    }
    if (end != blobSize) {
      throw new InvalidImageException(
          "chunk digest table entries end at " + end + ", blob size " + blobSize);
    }
    return new ChunkDigestTable(
        Compression.NONE, blobSize, blobSize, offsets, lengths, null, null, digests);
  }

  private static ChunkDigestTable decodeV2(ByteBuffer b, int total, long expectedStoredSize)
      throws InvalidImageException {
    if (total < HEADER_SIZE_V2) {
      throw new InvalidImageException(
          "chunk digest table: version 2 header truncated (" + total + " bytes)");
    }
    long blobSize = b.getLong(16);
    long count = b.getLong(24);
    long storedSize = b.getLong(32);
    int code = b.getInt(40);
    Compression compression = Compression.ofCode(code);
    if (compression == null || compression == Compression.NONE || b.getInt(44) != 0) {
      throw new InvalidImageException(
          "chunk digest table: compression " + code + ", reserved " + b.getInt(44));
    }
    if (count < 0
        || count != (total - HEADER_SIZE_V2) / ENTRY_SIZE_V2
        || (total - HEADER_SIZE_V2) % ENTRY_SIZE_V2 != 0) {
      throw new InvalidImageException(
          "chunk digest table: " + count + " entries in " + total + " bytes");
    }
    if (storedSize != expectedStoredSize) {
      throw new InvalidImageException(
          "chunk digest table covers "
              + storedSize
              + " stored bytes, the blob has "
              + expectedStoredSize);
    }
    if (blobSize < 0 || blobSize > LazyImage.MAX_BLOB_SIZE) {
      throw new InvalidImageException("chunk digest table: uncompressed size " + blobSize);
    }
    int n = (int) count;
    long[] offsets = new long[n];
    int[] lengths = new int[n];
    long[] storedOffsets = new long[n];
    int[] storedLengths = new int[n];
    byte[] digests = new byte[n * 32];
    long end = 0;
    long storedEnd = 0;
    for (int i = 0; i < n; i++) {
      int at = HEADER_SIZE_V2 + i * ENTRY_SIZE_V2;
      offsets[i] = b.getLong(at);
      lengths[i] = b.getInt(at + 8);
      storedLengths[i] = b.getInt(at + 12);
      storedOffsets[i] = b.getLong(at + 16);
      if (offsets[i] != end
          || lengths[i] <= 0
          || lengths[i] % BLOCK_SIZE != 0
          || lengths[i] > MAX_COMPRESSED_ENTRY) {
        throw new InvalidImageException(
            "chunk digest table: entry "
                + i
                + " (offset "
                + offsets[i]
                + ", length "
                + lengths[i]
                + ") does not continue the device at "
                + end
                + " in whole blocks of at most "
                + MAX_COMPRESSED_ENTRY
                + " bytes");
      }
      if (storedOffsets[i] != storedEnd
          || storedLengths[i] <= 0
          || storedLengths[i] > ZstdCodec.maxFrameLength(lengths[i])) {
        throw new InvalidImageException(
            "chunk digest table: entry "
                + i
                + " (stored at "
                + storedOffsets[i]
                + ", "
                + storedLengths[i]
                + " bytes for "
                + lengths[i]
                + ") does not continue the blob at "
                + storedEnd
                + " or exceeds "
                + ZstdCodec.maxFrameLength(lengths[i])
                + " bytes");
      }
      end += lengths[i];
      storedEnd += storedLengths[i];
      b.get(at + 24, digests, i * 32, 32);
    }
    if (end != blobSize || storedEnd != storedSize) {
      throw new InvalidImageException(
          "chunk digest table entries end at "
              + end
              + " (uncompressed size "
              + blobSize
              + ") and "
              + storedEnd
              + " stored (stored size "
              + storedSize
              + ")");
    }
    return new ChunkDigestTable(
        compression, blobSize, storedSize, offsets, lengths, storedOffsets, storedLengths, digests);
  }
}
