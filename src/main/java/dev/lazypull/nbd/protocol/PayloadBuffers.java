package dev.lazypull.nbd.protocol;

import java.nio.ByteBuffer;

/**
 * Where a {@link RequestDecoder} puts WRITE payloads. The owner bounds the memory they take: {@link
 * #take} may wait until enough of a budget is free, which stops the connection that decodes (flow
 * control), and every buffer taken comes back through {@link #give} once its request is done with
 * it.
 */
public interface PayloadBuffers {
  /**
   * A buffer for a payload of {@code length} bytes (1 to {@link Nbd#MAX_PAYLOAD}): position 0,
   * limit {@code length}. May wait for room; never fails.
   */
  ByteBuffer take(int length);

  /**
   * Returns a buffer from {@link #take}, its limit as taken (users read through duplicates), any
   * position.
   */
  void give(ByteBuffer buffer);
}
