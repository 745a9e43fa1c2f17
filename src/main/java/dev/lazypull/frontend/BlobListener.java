package dev.lazypull.frontend;

/**
 * Told by a front end when it starts serving a blob, when the kernel asks for a range of it, and
 * when it stops: cache LRU bookkeeping, prefetch policies and access profiles. {@link #read} runs
 * on the front end's event thread (also for the ranges read-ahead queues behind a request): it must
 * not block, and nothing it throws may reach the request's reply (front ends catch and log).
 */
public interface BlobListener {
  default void opened(ServedBlob blob) {}

  default void read(ServedBlob blob, long offset, long length) {}

  default void closed(ServedBlob blob) {}
}
