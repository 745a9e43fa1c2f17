package dev.lazypull.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The release launcher picks a java of version 17 or later from its JDK's release file without
 * starting it (a version probe was 0.15-0.2 s of every command), and asks a java that has no
 * release file.
 */
class LauncherTest {
  @TempDir Path tmp;

  /** A fake JDK at {@code tmp/NAME}: its java logs each call and answers a version probe. */
  private Path fakeJdk(String name, String releaseVersion, int probedVersion) throws IOException {
    Path home = tmp.resolve(name);
    Files.createDirectories(home.resolve("bin"));
    if (releaseVersion != null) {
      Files.writeString(
          home.resolve("release"), "IMPLEMENTOR=\"x\"\nJAVA_VERSION=\"" + releaseVersion + "\"\n");
    }
    Path java = home.resolve("bin/java");
    Files.writeString(
        java,
        "#!/bin/sh\necho \""
            + name
            + " $*\" >> '"
            + tmp.resolve("calls")
            + "'\ncase \"$1\" in -XshowSettings*) echo '    java.specification.version = "
            + probedVersion
            + "' >&2 ;; *) echo \"ran "
            + name
            + "\" ;; esac\n");
    Files.setPosixFilePermissions(java, PosixFilePermissions.fromString("rwxr-xr-x"));
    return java;
  }

  private String launch(Path java) throws Exception {
    return launch(java, "--version");
  }

  private String launch(Path java, String... args) throws Exception {
    List<String> cmd = new ArrayList<>(List.of("sh", "src/main/dist/bin/lazypull"));
    cmd.addAll(List.of(args));
    ProcessBuilder pb =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    pb.environment().put("LAZYPULL_JAVA", java.toString());
    pb.environment().put("LAZYPULL_JAR", tmp.resolve("lazypull.jar").toString());
    Process p = pb.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(30, TimeUnit.SECONDS));
    return out.trim();
  }

  private List<String> calls() throws IOException {
    Path c = tmp.resolve("calls");
    return Files.exists(c) ? Files.readAllLines(c) : List.of();
  }

  @Test
  void aJdkWithAReleaseFileOfVersion17OrLaterRunsWithoutAProbe() throws Exception {
    Path java = fakeJdk("jdk21", "21.0.1", 0);
    assertEquals("ran jdk21", launch(java));
    List<String> calls = calls();
    assertEquals(1, calls.size(), calls.toString());
    assertTrue(calls.get(0).endsWith("--version"), calls.toString());
  }

  @Test
  void shortCommandsRunOnC1WithTheSerialCollectorAndServersKeepTheDefaults() throws Exception {
    Path java = fakeJdk("jdk17", "17.0.15", 0);
    for (String cmd : List.of("prefetch", "mount", "inspect", "status", "pull", "copy", "--help")) {
      launch(java, cmd, "x");
    }
    for (String cmd : List.of("daemon", "nbd", "snapshotter", "pack", "index")) {
      launch(java, cmd, "x");
    }
    List<String> calls = calls();
    assertEquals(12, calls.size(), calls.toString());
    for (String call : calls) {
      boolean server = call.matches(".* -jar \\S+ (daemon|nbd|snapshotter|pack|index) x$");
      assertEquals(!server, call.contains(" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "), call);
      assertTrue(call.contains("-XX:+ExitOnOutOfMemoryError"), call);
    }
  }

  @Test
  void aClassDataArchiveNextToTheJarIsGivenToShortCommandsOnly() throws Exception {
    Path java = fakeJdk("jdk17", "17.0.15", 0);
    Files.writeString(tmp.resolve("lazypull.jar"), "jar");
    launch(java, "status", "x"); // no archive yet
    Path jsa = tmp.resolve("lazypull.jsa");
    Files.writeString(jsa, "archive");
    launch(java, "status", "x");
    launch(java, "daemon", "x");
    List<String> calls = calls();
    assertEquals(3, calls.size(), calls.toString());
    assertTrue(!calls.get(0).contains("SharedArchiveFile"), calls.get(0));
    assertTrue(
        calls.get(1).contains(" -XX:SharedArchiveFile=" + jsa.toRealPath() + " -Xlog:cds=off "),
        calls.get(1));
    assertTrue(!calls.get(2).contains("SharedArchiveFile"), "servers start once: " + calls.get(2));
  }

  @Test
  void anOlderJdkIsPassedOverUnstarted() throws Exception {
    Path java = fakeJdk("jdk11", "11.0.2", 17); // its probe would lie: the release file decides
    String out = launch(java);
    assertTrue(!out.equals("ran jdk11"), out);
    assertEquals(List.of(), calls(), "the old java was never started");
  }

  @Test
  void aJavaWithoutAReleaseFileIsAsked() throws Exception {
    Path java = fakeJdk("bare", null, 17);
    assertEquals("ran bare", launch(java));
    List<String> calls = calls();
    assertEquals(2, calls.size(), calls.toString());
    assertTrue(calls.get(0).contains("-XshowSettings:properties -version"), calls.toString());
  }
}
