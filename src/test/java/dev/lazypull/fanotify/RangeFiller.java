package dev.lazypull.fanotify;

import dev.lazypull.sys.Errno;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A minimal event loop over any {@link FanotifyGroup}, for tests: fills each event's range of the
 * marked file from a source file of the same content (clamped to the source's size) through the
 * event's fd and answers {@code answer}; when {@code fill} is false it answers without filling.
 * Malformed events are denied with EIO.
 */
final class RangeFiller implements Runnable {
  private final FanotifyGroup group;
  private final Path source;
  private final boolean fill;
  private final int answer;
  private volatile boolean stop;
  final AtomicLong events = new AtomicLong();
  final AtomicLong bytesFilled = new AtomicLong();
  final List<String> problems = Collections.synchronizedList(new ArrayList<>());

  RangeFiller(FanotifyGroup group, Path source, boolean fill, int answer) {
    this.group = group;
    this.source = source;
    this.fill = fill;
    this.answer = answer;
  }

  void stop() {
    stop = true;
  }

  @Override
  public void run() {
    ByteBuffer buf = ByteBuffer.allocateDirect(FanotifyDecoder.READ_BUFFER_SIZE);
    try (FileChannel src = FileChannel.open(source)) {
      long size = src.size();
      while (!stop) {
        if (!group.awaitEvents(50)) {
          continue;
        }
        for (FanotifyMessage m : group.readBatch(buf)) {
          if (m instanceof FanotifyMessage.Event e && e.fd() >= 0) {
            events.incrementAndGet();
            int response = answer;
            try {
              if (fill) {
                long from = e.hasRange() ? e.offset() : 0;
                long to = Math.min(size, e.hasRange() ? e.end() : size);
                if (to > from) {
                  ByteBuffer data = ByteBuffer.allocateDirect((int) (to - from));
                  while (data.hasRemaining() && src.read(data, from + data.position()) > 0) {
                    // read the whole range
                  }
                  data.flip();
                  long n = group.pwrite(e.fd(), data, from);
                  bytesFilled.addAndGet(n);
                }
              }
            } catch (IOException ex) {
              problems.add("fill of " + e + ": " + ex);
              response = FanotifyResponse.denyErrno(Errno.EIO);
            }
            group.finish(e.fd(), response);
          } else if (m instanceof FanotifyMessage.Malformed bad) {
            problems.add("malformed: " + bad);
            if (bad.fd() >= 0) {
              try {
                group.finish(bad.fd(), FanotifyResponse.denyErrno(Errno.EIO));
              } catch (IOException ignored) {
                // it may not have been a permission event
              }
            }
          }
        }
      }
    } catch (IOException | RuntimeException ex) {
      problems.add("event loop died: " + ex);
    }
  }
}
