package dev.lazypull.arch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The package layout reads as the data path, and this keeps it so: the front ends (fscache,
 * fanotify, nbd) sit on the one fetch core and never on each other; nothing below them imports a
 * front end, the application layer or the CLI; the application layer never imports the CLI; JNA
 * stays in {@code sys}; NBD's wire codecs know nothing of its server, and the server nothing of the
 * devices it serves. Every reference counts: imports and names written out in full.
 */
class LayeringTest {
  private static final Path SOURCES = Path.of("src/main/java/dev/lazypull");
  private static final Set<String> FRONT_ENDS = Set.of("fscache", "fanotify", "nbd");
  private static final Set<String> ABOVE = Set.of("app", "cli");
  private static final Pattern REF =
      Pattern.compile("\\bdev\\.lazypull\\.([a-z]+)(?:\\.([a-z]+))?\\.[A-Z]");

  /**
   * Each source file's package (first segment below dev.lazypull, and its sub-package) and what it
   * refers to.
   */
  private record Source(Path file, String pkg, String sub, List<String[]> refs, boolean jna) {}

  private static List<Source> sources() throws IOException {
    List<Source> out = new ArrayList<>();
    try (Stream<Path> files = Files.walk(SOURCES)) {
      for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
        Path rel = SOURCES.relativize(f);
        if (rel.getNameCount() < 2) {
          continue; // dev.lazypull itself (Version)
        }
        String pkg = rel.getName(0).toString();
        String sub = rel.getNameCount() > 2 ? rel.getName(1).toString() : "";
        String text = Files.readString(f);
        List<String[]> refs = new ArrayList<>();
        Matcher m = REF.matcher(text);
        while (m.find()) {
          refs.add(new String[] {m.group(1), m.group(2) == null ? "" : m.group(2)});
        }
        out.add(new Source(f, pkg, sub, refs, text.contains("com.sun.jna")));
      }
    }
    return out;
  }

  @Test
  void nothingBelowTheFrontEndsImportsAFrontEndTheApplicationOrTheCli() throws IOException {
    List<String> violations = new ArrayList<>();
    for (Source s : sources()) {
      for (String[] r : s.refs()) {
        String to = r[0];
        if (to.equals(s.pkg())) {
          continue;
        }
        boolean below = !FRONT_ENDS.contains(s.pkg()) && !ABOVE.contains(s.pkg());
        if (below && (FRONT_ENDS.contains(to) || ABOVE.contains(to))) {
          violations.add(s.file() + " (below the front ends) -> " + to);
        } else if (FRONT_ENDS.contains(s.pkg())
            && (FRONT_ENDS.contains(to) || ABOVE.contains(to))) {
          violations.add(s.file() + " (front end " + s.pkg() + ") -> " + to);
        } else if (s.pkg().equals("app") && to.equals("cli")) {
          violations.add(s.file() + " (application) -> cli");
        }
      }
    }
    assertEquals(List.of(), violations);
  }

  @Test
  void nbdCodecsKnowNoServerAndTheServerNoDevice() throws IOException {
    Map<String, Set<String>> forbidden =
        Map.of("protocol", Set.of("server", "device"), "server", Set.of("device"));
    List<String> violations = new ArrayList<>();
    for (Source s : sources()) {
      if (!s.pkg().equals("nbd") || !forbidden.containsKey(s.sub())) {
        continue;
      }
      for (String[] r : s.refs()) {
        if (r[0].equals("nbd") && forbidden.get(s.sub()).contains(r[1])) {
          violations.add(s.file() + " -> nbd." + r[1]);
        }
      }
    }
    assertEquals(List.of(), violations);
  }

  @Test
  void jnaStaysInSys() throws IOException {
    List<Source> all = sources();
    assertTrue(all.size() > 100, "the sources were found: " + all.size());
    assertEquals(
        List.of(),
        all.stream().filter(s -> s.jna() && !s.pkg().equals("sys")).map(Source::file).toList());
  }
}
