package dev.lazypull.cli;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/**
 * {@code lazypull train-cds DIR} (hidden): what the short commands do, in one JVM, on a scratch
 * tree in DIR and a loopback HTTP server that knows no image — so a JVM run with {@code
 * -XX:ArchiveClassesAtExit} archives the classes they load (AppCDS), and later short commands start
 * without loading and verifying them again. install.sh and the build run it; nothing here touches
 * the network, the daemon or the host's caches.
 */
@Command(name = "train-cds", hidden = true, description = "Run the short commands once (AppCDS).")
final class TrainCdsCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "DIR", description = "A new (or empty) scratch directory.")
  Path dir;

  @Override
  public Integer call() throws Exception {
    if (Files.exists(dir) && !isEmptyDirectory(dir)) { // it unmounts DIR/mnt: only its own scratch
      System.err.println(
          "lazypull train-cds: "
              + dir
              + " exists and is not an empty directory; give a new (or empty) scratch directory");
      return 2;
    }
    Files.createDirectories(dir);
    Path tree = Files.createDirectories(dir.resolve("tree"));
    byte[] data = new byte[(3 << 20) + 123];
    new Random(1).nextBytes(data);
    Files.write(tree.resolve("data.bin"), data);
    Files.writeString(tree.resolve("small.txt"), "small\n");
    Files.createDirectories(tree.resolve("d"));
    Files.writeString(tree.resolve("d/text"), "x".repeat(100_000));
    // every command that reads a config file gets this one: never the host's
    // /etc/lazypull/config.toml
    Path config = dir.resolve("config.toml");
    Files.writeString(config, "[nbd]\nlog_level = \"error\"\n");
    String cfg = config.toString();
    String layout = "oci:" + dir.resolve("layout") + ":v1";
    String none = dir.resolve("no-daemon.sock").toString();
    HttpServer server =
        HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    server.createContext(
        "/",
        ex -> { // a registry that has nothing: every lookup is a clear "not found"
          byte[] body =
              "{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":\"unknown\"}]}"
                  .getBytes(StandardCharsets.UTF_8);
          ex.getResponseHeaders().set("Content-Type", "application/json");
          ex.getResponseHeaders().set("Docker-Distribution-API-Version", "registry/2.0");
          ex.sendResponseHeaders(
              ex.getRequestURI().getPath().equals("/v2/") ? 200 : 404, body.length);
          try (OutputStream out = ex.getResponseBody()) {
            out.write(body);
          }
        });
    server.start();
    String registry = "127.0.0.1:" + server.getAddress().getPort() + "/train/none:v1";
    PrintStream out = System.out;
    PrintStream err = System.err;
    int failed = 0;
    try (PrintStream quiet = new PrintStream(OutputStream.nullOutputStream())) {
      System.setOut(quiet);
      System.setErr(quiet);
      List<String[]> runs =
          List.of(
              new String[] {"--help"},
              new String[] {"pack", tree.toString(), "--output", layout, "--config", cfg},
              new String[] {"inspect", layout, "--config", cfg},
              new String[] {"inspect", layout, "--json", "--config", cfg},
              new String[] {
                "prefetch",
                layout,
                "--standalone",
                "--all",
                "--config",
                cfg,
                "--cache-dir",
                dir.resolve("cache").toString()
              },
              new String[] {"inspect", registry, "--plain-http", "--config", cfg},
              new String[] {"status", "--socket", none},
              new String[] {"mount", layout, dir.resolve("mnt").toString(), "--socket", none},
              new String[] {
                "prefetch", "train", "--all", "--wait", "--socket", none, "--config", cfg
              },
              new String[] {"umount", dir.resolve("mnt").toString(), "--socket", none});
      for (String[] args : runs) {
        Main.run(args); // the failing ones (no daemon, no such image) load their error paths
      }
      for (String c : List.of("mount", "status", "umount")) { // no --config: they read none
        Main.run(c, "--help");
      }
      for (String c : List.of("prefetch", "inspect", "pull", "copy")) {
        Main.run(c, "--help", "--config", cfg);
      }
      // the layout it packed reads back
      failed = Main.run("inspect", layout, "--config", cfg) == 0 ? 0 : 1;
    } finally {
      System.setOut(out);
      System.setErr(err);
      server.stop(0);
    }
    return failed;
  }

  private static boolean isEmptyDirectory(Path p) throws IOException {
    if (!Files.isDirectory(p)) {
      return false;
    }
    try (Stream<Path> entries = Files.list(p)) {
      return entries.findAny().isEmpty();
    }
  }
}
