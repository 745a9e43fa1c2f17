package dev.lazypull.app;

import dev.lazypull.catalog.Catalog;
import dev.lazypull.catalog.ImageRecord;
import dev.lazypull.catalog.ImageRegistrar;
import dev.lazypull.config.ConfigException;
import dev.lazypull.config.ConfigFile;
import dev.lazypull.config.ConfigNode;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.BiConsumer;
import java.util.logging.Logger;

/**
 * Images declared in {@code /etc/lazypull/images.d/*.toml} ({@code image}, optional {@code fsid}
 * and {@code domain}), registered at start before READY=1 so that erofs mount units ordered after
 * the service find them. A declaration that cannot be resolved now (registry unreachable at boot)
 * keeps its earlier catalog entry: the catalog is persistent, and an already-registered image
 * mounts without the registry.
 */
public final class DeclaredImages {
  private static final Logger LOG = Logger.getLogger(DeclaredImages.class.getName());

  public record Result(int registered, int keptPrevious, List<String> errors) {}

  private DeclaredImages() {}

  /**
   * @param setPolicy applies a declaration's {@code prefetch} policy (fsid, policy); may be null
   */
  public static Result registerAll(
      Path dir, ImageRegistrar registrar, Catalog catalog, BiConsumer<String, String> setPolicy) {
    int registered = 0;
    int kept = 0;
    List<String> errors = new ArrayList<>();
    if (dir == null || !Files.isDirectory(dir)) {
      return new Result(0, 0, errors);
    }
    List<Path> files = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.toml")) {
      ds.forEach(files::add);
    } catch (IOException e) {
      errors.add(dir + ": " + e.getMessage());
      return new Result(0, 0, errors);
    }
    files.sort(null);
    for (Path f : files) {
      String image;
      String fsid;
      String domain;
      String prefetch;
      try {
        ConfigNode n = ConfigFile.load(f, true).allowOnly("image", "fsid", "domain", "prefetch");
        image = n.string("image", null);
        if (image == null) {
          throw new ConfigException(f + ": missing key image");
        }
        fsid = n.string("fsid", null);
        domain = n.string("domain", null);
        prefetch = n.string("prefetch", null);
      } catch (ConfigException e) {
        errors.add(e.getMessage());
        continue;
      }
      try {
        ImageRecord r = registrar.register(image, fsid, domain, true);
        if (prefetch != null && setPolicy != null) {
          setPolicy.accept(r.fsid(), prefetch);
        }
        registered++;
        LOG.info("registered " + image + " from " + f.getFileName() + " as fsid " + r.fsid());
      } catch (IOException | RuntimeException e) {
        Optional<ImageRecord> previous = fsid == null ? Optional.empty() : catalog.get(fsid);
        if (previous.isPresent()
            && previous.get().reference().contains(image.replaceFirst("^oci:", ""))) {
          kept++;
          LOG.warning(
              f
                  + ": cannot resolve "
                  + image
                  + " now ("
                  + e.getMessage()
                  + "); keeping the registration of "
                  + previous.get().manifestDigest());
        } else {
          errors.add(f + ": " + image + ": " + e.getMessage());
        }
      }
    }
    for (String e : errors) {
      LOG.warning("images.d: " + e);
    }
    return new Result(registered, kept, errors);
  }
}
