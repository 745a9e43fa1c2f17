package dev.lazypull.sys;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPInputStream;

/**
 * Reads the running kernel's build configuration to explain a failure (never to predict success:
 * modules may be rebuilt with options the packaged config does not show).
 */
public final class KernelConfig {
  private KernelConfig() {}

  /** The kernel config as option → value ("y", "m", …), or empty if it cannot be found. */
  public static Map<String, String> kernelConfig() {
    String release = System.getProperty("os.version");
    for (Path p : List.of(Path.of("/proc/config.gz"), Path.of("/boot/config-" + release))) {
      if (!Files.isReadable(p)) {
        continue;
      }
      try (InputStream raw = Files.newInputStream(p);
          InputStream in = p.toString().endsWith(".gz") ? new GZIPInputStream(raw) : raw;
          BufferedReader r =
              new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
        Map<String, String> config = new HashMap<>();
        String line;
        while ((line = r.readLine()) != null) {
          int eq = line.indexOf('=');
          if (line.startsWith("CONFIG_") && eq > 0) {
            config.put(line.substring(0, eq), line.substring(eq + 1));
          }
        }
        return config;
      } catch (IOException e) {
        // try the next location
      }
    }
    return Map.of();
  }

  /**
   * Which of {@code options} this kernel is built without, in a sentence (or why that cannot be
   * said).
   */
  public static String describeMissing(List<String> options) {
    Map<String, String> config = kernelConfig();
    if (config.isEmpty()) {
      return "the kernel config could not be read to say which of "
          + String.join(", ", options)
          + " is missing";
    }
    List<String> missing = new ArrayList<>();
    for (String option : options) {
      String v = config.get(option);
      if (v == null || !(v.equals("y") || v.equals("m"))) {
        missing.add(option);
      }
    }
    if (missing.isEmpty()) {
      return "the kernel config has " + String.join(", ", options);
    }
    return "this kernel ("
        + System.getProperty("os.version")
        + ") is built without "
        + String.join(", ", missing);
  }
}
