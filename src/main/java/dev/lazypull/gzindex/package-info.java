/**
 * Random access into unmodified gzip layers through a side-car index, the way SOCI's zTOC,
 * erofs-utils' {@code --gzinfo} and nydus zran do it (all descendants of zlib's {@code
 * examples/zran.c}).
 *
 * <h2>Pieces</h2>
 *
 * <ul>
 *   <li>{@link DeflateDecoder}: a pure-Java RFC 1951 decoder that reports every block boundary with
 *       its exact bit position and can start at any bit with a preset 32 KiB window ({@code
 *       Inflater} can do neither).
 *   <li>{@link GzipIndexer}: reads a gzip stream once (it is an InputStream of the uncompressed
 *       bytes, so the tar can be listed in the same pass), checks every member's CRC32 and ISIZE,
 *       and records a {@link Checkpoint} at the first block boundary more than {@code span} bytes
 *       (default 4 MiB) after the previous one; computes the layer's sha256 and each span's.
 *   <li>{@link Zinfo}: the checkpoints and windows in SOCI's zinfo v2 layout, which erofs-utils 1.9
 *       also reads and writes; streamed to a file while indexing; a strict reader (v1 too).
 *   <li>{@link SpanTable}: lazypull's side table — sizes, the layer's and the zinfo's sha256, and
 *       per span the sha256 of its compressed bytes.
 *   <li>{@link SpanReader}: uncompressed byte ranges from a {@link GzipIndex} and a {@link
 *       ByteRangeReader} of the compressed layer: fetches whole spans, checks their digests before
 *       inflating, inflates from the checkpoint.
 * </ul>
 *
 * <h2>Checkpoint convention</h2>
 *
 * As in zran.c / SOCI / erofs-utils: {@code in} is the offset of the first compressed byte after
 * the boundary rounded up, {@code bits} (0–7) how many high bits of byte {@code in - 1} belong
 * after it (zlib's {@code data_type & 7}; a reader primes them with {@code inflatePrime(bits,
 * byte[in-1] >> (8 - bits))}), {@code out} the uncompressed offset, and the window the 32 KiB of
 * output before it, right-aligned, zeros where the current gzip member had produced less. The first
 * checkpoint is at the first member's first block (after its header), out 0, a zero window.
 *
 * <h2>Concatenated members</h2>
 *
 * A member start is a boundary like any other, with nothing to remember (zero window). By default
 * it becomes a checkpoint only when a span is due; the span reader crosses member ends inside a
 * span (trailer, next header). erofs-utils' reader cannot cross a member end (it stops at {@code
 * Z_STREAM_END}) and its builder puts a checkpoint at every member: {@code
 * Options.checkpointEveryMember} does the same, for indexes erofs-utils must read (at 32 KiB per
 * checkpoint, costly for eStargz layers of many small members).
 *
 * <h2>Why not Inflater with a shifted span</h2>
 *
 * Shifting the span right by the bit offset keeps the bits but not the original byte boundaries: a
 * stored block after an unaligned checkpoint (stored blocks align to the original bytes) is then
 * misread — sometimes silently — and where a member ends inside the span the trailer's position is
 * ambiguous by one byte. The span reader therefore uses {@link DeflateDecoder}; the tests still
 * check every checkpoint with zlib (aligned ones fully, unaligned ones for their first block).
 *
 * <h2>Span table layout (version 1, little-endian)</h2>
 *
 * <pre>
 *   0   8  magic "LPGZSPAN"
 *   8   4  version (1)
 *   12  4  span count n (= the zinfo's checkpoint count)
 *   16  8  span size
 *   24  8  compressed size of the layer
 *   32  8  uncompressed size of the layer
 *   40 32  sha256 of the compressed layer
 *   72 32  sha256 of the zinfo
 *   104    n × 32: sha256 of span i's compressed bytes [firstByte(i), in(i+1)) — the last span to the layer's end
 * </pre>
 */
package dev.lazypull.gzindex;
