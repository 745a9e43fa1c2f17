package dev.lazypull.fanotify;

import dev.lazypull.image.Json;
import dev.lazypull.sys.AtomicFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.logging.Logger;

/**
 * What a restarted fanotify front end needs from its predecessor, kept in the state directory: the
 * images it had prepared (their mounts may still be live and must be served again), and the highest
 * event fd number it was handed (the events it read and never answered lie below it, and are denied
 * before new events are read).
 */
final class PreparedImages {
  private static final Logger LOG = Logger.getLogger(PreparedImages.class.getName());
  private static final String IMAGES = "fanotify-prepared.json";
  private static final String HIGHEST_FD = "fanotify-highest-event-fd";

  private final Path dir;
  private volatile int highest = -1;

  PreparedImages(Path dir) {
    this.dir = dir;
  }

  /** The prepared images' fsids (empty when there is no state, or it cannot be read). */
  List<String> load() {
    try {
      List<String> out = new ArrayList<>();
      for (String fsid :
          Json.parse(Files.readAllBytes(dir.resolve(IMAGES)), String[].class, "prepared images")) {
        out.add(fsid);
      }
      return out;
    } catch (NoSuchFileException e) {
      return List.of();
    } catch (IOException e) {
      LOG.warning("prepared images in " + dir + " cannot be read: " + e.getMessage());
      return List.of();
    }
  }

  void save(Collection<String> fsids) {
    try {
      AtomicFiles.write(dir.resolve(IMAGES), Json.write(new ArrayList<>(fsids)));
    } catch (IOException e) {
      LOG.warning(
          "saving the prepared images: "
              + e.getMessage()
              + "; a restart will not serve their mounts");
    }
  }

  /**
   * The highest event fd number a predecessor recorded, or -1 (it runs with its fd limit capped at
   * {@link EventFdLimit#MAX}, which bounds the numbers anyway; the record covers one that could not
   * lower it).
   */
  int highestEventFd() {
    try {
      return Integer.parseInt(
          Files.readString(dir.resolve(HIGHEST_FD), StandardCharsets.US_ASCII).trim());
    } catch (IOException | NumberFormatException e) {
      return -1;
    }
  }

  /**
   * Records {@code fd} when it is the highest seen (rare: descriptor numbers are reused from the
   * bottom).
   */
  void sawEventFd(int fd) {
    if (fd <= highest) {
      return;
    }
    highest = fd;
    try {
      AtomicFiles.write(
          dir.resolve(HIGHEST_FD), Integer.toString(fd).getBytes(StandardCharsets.US_ASCII));
    } catch (IOException e) {
      LOG.fine(() -> "recording the highest event fd: " + e.getMessage());
    }
  }
}
