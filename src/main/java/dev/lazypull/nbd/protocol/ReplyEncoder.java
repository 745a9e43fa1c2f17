package dev.lazypull.nbd.protocol;

import java.nio.ByteBuffer;
import java.util.List;

/**
 * The replies of one connection's transmission phase, in the reply mode it negotiated: simple
 * replies, or structured reply chunks once {@code STRUCTURED_REPLY} was agreed. Errors are then
 * ERROR chunks carrying their reason (mandatory for a READ in that mode); a success without data
 * stays a simple reply, which the spec allows for every command but READ. READ data replies are
 * streamed by the server from the cache ({@link ReplyCodec#putSimpleHeader}, {@link
 * ReplyCodec#putDataHeader}).
 */
public final class ReplyEncoder {
  private final boolean structured;

  public ReplyEncoder(boolean structured) {
    this.structured = structured;
  }

  public boolean structured() {
    return structured;
  }

  /** Success, no data (FLUSH, CACHE). */
  public ByteBuffer ok(long cookie) {
    return ReplyCodec.simple(0, cookie);
  }

  /** A final error reply; {@code why} goes to the client only with structured replies. */
  public ByteBuffer error(long cookie, int errno, String why) {
    return structured ? ReplyCodec.error(cookie, errno, why) : ReplyCodec.simple(errno, cookie);
  }

  /**
   * The whole answer to a BLOCK_STATUS: one final chunk for {@code contextId}. Structured replies
   * only.
   */
  public ByteBuffer blockStatus(long cookie, int contextId, List<ReplyCodec.Extent> extents) {
    if (!structured) {
      throw new IllegalStateException("BLOCK_STATUS replies need structured replies");
    }
    return ReplyCodec.blockStatus(cookie, contextId, extents, true);
  }
}
