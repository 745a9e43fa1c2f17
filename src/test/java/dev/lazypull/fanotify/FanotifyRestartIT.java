package dev.lazypull.fanotify;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.testing.Await;
import dev.lazypull.testing.CliRun;
import dev.lazypull.testing.DockerRegistryFixture;
import dev.lazypull.testing.FaultProxy;
import dev.lazypull.testing.RegistryImages;
import dev.lazypull.testing.Requirements;
import dev.lazypull.testing.TestTrees;
import dev.lazypull.testing.VmHarness;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

/**
 * Crash and restart of the fanotify daemon on this host's kernel, with readers in the middle of
 * cold reads. Four readers copy big files of a lazily mounted registry image while every blob
 * request is held (a {@link FaultProxy} in front of docker-registry stalls them), so each reader is
 * provably waiting on an event the daemon has read — its metrics count the reads in flight and each
 * reader's kernel stack is in fanotify — when the daemon is killed with SIGKILL. The group outlives
 * it (the fd keeper when started by hand; the fd-store supervisor standing in for systemd), so no
 * read is let through over a hole; the restarted daemon takes the group over, fails the events its
 * predecessor never answered with EIO, and serves everything after. Every reader ends with every
 * byte right or an I/O error after right bytes, within 60 s. The registry going away mid-read and
 * corrupt chunks give EIO too.
 */
class FanotifyRestartIT {
  private static final List<String> FILES = List.of("big0.bin", "big1.bin", "big2.bin", "big3.bin");

  @TempDir(cleanup = CleanupMode.ON_SUCCESS)
  static Path shared;

  @TempDir(cleanup = CleanupMode.ON_SUCCESS)
  Path work;

  private static DockerRegistryFixture reg;
  private static Path toml;
  private static Path tree;
  private static Path md5;
  private static String repo;

  @BeforeAll
  static void start() throws Exception {
    HostDaemon.requireHost(shared);
    reg = DockerRegistryFixture.builder(shared.resolve("registry")).start();
    toml = RegistryImages.config(shared.resolve("conf"), null);
    tree = Files.createDirectories(shared.resolve("tree"));
    Random rnd = new Random(11);
    for (int i = 0; i < FILES.size(); i++) {
      TestTrees.write(tree.resolve(FILES.get(i)), (40L << 20) + i * 4096 + 123, rnd);
    }
    Files.writeString(tree.resolve("small.txt"), "small\n");
    md5 = TestTrees.md5List(tree, shared.resolve("tree.md5"));
    repo = "/restart/big:v1";
    CliRun.Result r =
        CliRun.run(
            "pack",
            tree.toString(),
            "--push",
            reg.host() + repo,
            "--plain-http",
            "--config",
            toml.toString(),
            "--scratch-dir",
            shared.resolve("scratch").toString());
    assertEquals(0, r.code(), r.err());
  }

  @AfterAll
  static void stop() {
    if (reg != null) {
      reg.close();
    }
  }

  /** Starts a reader of every big file. */
  private List<HostReads.Reader> startReaders(Path mnt, String tag) throws Exception {
    List<HostReads.Reader> readers = new ArrayList<>();
    for (String f : FILES) {
      readers.add(
          HostReads.start(mnt.resolve(f), tree.resolve(f), work.resolve(tag + "-" + f + ".copy")));
    }
    return readers;
  }

  /**
   * Waits until every reader waits on an event the daemon has read (its metrics) and holds (their
   * stacks).
   */
  private static double awaitReadsInFlight(HostDaemon d, List<HostReads.Reader> readers)
      throws Exception {
    Await.until(
        () ->
            d.metric("lazypull_reads_inflight") >= readers.size()
                && readers.stream().allMatch(HostReads.Reader::waitsOnFanotify),
        Duration.ofSeconds(30),
        "every reader waiting on an event the daemon read");
    return d.metric("lazypull_reads_inflight");
  }

  private static List<HostReads.Outcome> finish(List<HostReads.Reader> readers, String what)
      throws Exception {
    List<HostReads.Outcome> out = new ArrayList<>();
    for (HostReads.Reader r : readers) {
      HostReads.Outcome o =
          HostReads.finish(r, true); // right bytes, or right bytes then EIO; never a hang
      System.out.println(what + ": " + o);
      out.add(o);
    }
    return out;
  }

  /** After the fault: every file reads right (through the same mount), bounded. */
  private void everyFileReadsRight(Path mnt, String tag) throws Exception {
    for (String f : FILES) {
      HostReads.read(
          mnt.resolve(f), tree.resolve(f), work.resolve(tag + "-after-" + f + ".copy"), false);
    }
    HostReads.md5Check(mnt, md5);
  }

  private static int sweptCount(HostDaemon d) throws InterruptedException {
    Matcher m =
        Pattern.compile("denied \\(EIO\\) (\\d+) access").matcher(d.awaitLog("never answered", 30));
    return m.find() ? Integer.parseInt(m.group(1)) : -1;
  }

  @Test
  void killNineOfADaemonStartedByHandLosesNoByteAndHangsNoReader() throws Exception {
    try (FaultProxy proxy = FaultProxy.in(reg, 1)) {
      HostDaemon d = HostDaemon.in(work, toml);
      try {
        d.start();
        ProcessHandle keeper =
            d.keeper().orElseThrow(() -> new AssertionError("no fd keeper:\n" + d.logText()));
        Path mnt = d.mount(proxy.host() + repo, work.resolve("mnt"));
        proxy.schedule(
            FaultProxy.Schedule.always(FaultProxy.Fault.STALL)); // blob requests get no answer
        List<HostReads.Reader> readers = startReaders(mnt, "kill");
        double inflight = awaitReadsInFlight(d, readers);
        long killedPid = d.process().pid();
        d.kill9();

        // the keeper holds the group: nothing is let through over a hole; the readers wait for the
        // successor
        assertTrue(keeper.isAlive(), "the keeper outlives the daemon");
        for (HostReads.Reader r : readers) {
          assertTrue(
              r.process().isAlive() && r.waitsOnFanotify(),
              "still waiting, not allowed: " + r.file());
        }
        assertEquals(List.of(mnt.toString()), d.mountsUnderWork(), "the mount stays");

        proxy.schedule(FaultProxy.Schedule.none());
        long t0 = System.nanoTime();
        d.start(); // as an operator would: the same command again
        long restartMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(d.logText().contains("from the keeper"), d.logText());
        int swept = sweptCount(d);
        List<HostReads.Outcome> outcomes = finish(readers, "kill -9 (by hand)");
        long eio = outcomes.stream().filter(HostReads.Outcome::ioError).count();
        assertTrue(
            swept >= eio && swept >= 1,
            "the successor failed what its predecessor left unanswered: "
                + swept
                + " swept, "
                + eio
                + " readers got EIO");
        System.out.printf(
            "kill -9 (by hand) of pid %d with %.0f reads in flight: restarted and ready in %d ms, "
                + "%d unanswered events failed with EIO, %d readers EIO, %d complete%n",
            killedPid, inflight, restartMs, swept, eio, outcomes.size() - eio);

        everyFileReadsRight(mnt, "kill");
        assertEquals(
            keeper.pid(), d.keeper().orElseThrow().pid(), "the same keeper keeps the group");

        // a clean stop unmounts first, then lets the keeper go
        d.stop();
        assertEquals(
            List.of(), d.mountsUnderWork(), "a clean stop leaves no mount without its daemon");
        assertTrue(
            keeper.onExit().orTimeout(30, TimeUnit.SECONDS).handle((p, t) -> t == null).join(),
            "the keeper ends with a clean stop");
      } finally {
        d.cleanUp();
      }
    }
  }

  /** The fd-store supervisor (a stand-in for systemd), built into the work dir. */
  private Path supervisor() throws Exception {
    Requirements.requireTool("gcc");
    Path supervisor = work.resolve("fdstore-supervisor");
    Requirements.run(
        "gcc",
        "-O2",
        "-o",
        supervisor.toString(),
        VmHarness.baseDir().resolve("native-stubs/fdstore/fdstore-supervisor.c").toString());
    return supervisor;
  }

  private HostDaemon underSupervisor(Path supervisor) throws IOException {
    return HostDaemon.under(
        work,
        toml,
        List.of(
            supervisor.toString(),
            "--restarts",
            "1",
            "--notify-socket",
            work.resolve("notify.sock").toString(),
            "--"));
  }

  @Test
  void killNineUnderTheFdStoreSupervisorLosesNoByteAndHangsNoReader() throws Exception {
    Path supervisor = supervisor();
    try (FaultProxy proxy = FaultProxy.in(reg, 2)) {
      HostDaemon d = underSupervisor(supervisor);
      try {
        d.start();
        d.awaitLog("@@SUPERVISOR stored name=fanotify", 10);
        assertTrue(
            d.keeper().isEmpty(),
            "under a service manager the fd store keeps the group, no keeper");
        Matcher first =
            Pattern.compile("started pid=(\\d+) run=0")
                .matcher(d.awaitLog("@@SUPERVISOR started", 5));
        assertTrue(first.find());
        long pid = Long.parseLong(first.group(1));
        Path mnt = d.mount(proxy.host() + repo, work.resolve("mnt"));
        proxy.schedule(FaultProxy.Schedule.always(FaultProxy.Fault.STALL));
        List<HostReads.Reader> readers = startReaders(mnt, "sup");
        double inflight = awaitReadsInFlight(d, readers);
        proxy.schedule(
            FaultProxy.Schedule.none()); // for the successor; the stalled requests stay stalled
        long t0 = System.nanoTime();
        ProcessHandle.of(pid).orElseThrow().destroyForcibly(); // SIGKILL to the daemon, as a crash
        d.awaitLog("@@SUPERVISOR died pid=" + pid + " signal=9", 30);
        d.awaitLog("INFO Daemon: ready:", 2, 60); // restarted by the supervisor with the stored fd
        long restartMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertTrue(
            d.logText().contains("took over the fanotify group (fd 3) from the fd store"),
            d.logText());
        int swept = sweptCount(d);
        List<HostReads.Outcome> outcomes = finish(readers, "kill -9 (fd store)");
        long eio = outcomes.stream().filter(HostReads.Outcome::ioError).count();
        assertTrue(swept >= eio && swept >= 1, swept + " swept, " + eio + " EIO");
        System.out.printf(
            "kill -9 (fd-store supervisor) with %.0f reads in flight: restarted and ready in %d ms, %d "
                + "unanswered events failed with EIO, %d readers EIO, %d complete%n",
            inflight, restartMs, swept, eio, outcomes.size() - eio);
        everyFileReadsRight(mnt, "sup");

        assertEquals(
            143, d.stop(), "SIGTERM: the supervisor passes it on and returns the daemon's status");
        assertEquals(
            List.of(), d.mountsUnderWork(), "a clean stop leaves no mount without its daemon");
      } finally {
        d.cleanUp();
      }
    }
  }

  @Test
  void theRegistryGoingAwayMidReadIsAnIoErrorNeverZeros() throws Exception {
    try (FaultProxy proxy = FaultProxy.in(reg, 3)) {
      HostDaemon d = HostDaemon.in(work, toml, "--read-timeout", "20s");
      try {
        d.start();
        Path mnt = d.mount(proxy.host() + repo, work.resolve("mnt"));
        // the readers get a first part, then the registry stalls and goes away
        HostReads.read(
            mnt.resolve("small.txt"), tree.resolve("small.txt"), work.resolve("small.copy"), false);
        proxy.schedule(FaultProxy.Schedule.always(FaultProxy.Fault.STALL));
        List<HostReads.Reader> readers = startReaders(mnt, "down");
        awaitReadsInFlight(d, readers);
        proxy.down();
        List<HostReads.Outcome> outcomes = finish(readers, "registry down mid-read");
        assertTrue(
            outcomes.stream().allMatch(HostReads.Outcome::ioError),
            "nothing could be fetched: " + outcomes);
        assertTrue(d.isAlive());
        proxy.up();
        proxy.schedule(FaultProxy.Schedule.none());
        everyFileReadsRight(mnt, "down");
      } finally {
        d.cleanUp();
      }
    }
  }

  @Test
  void corruptChunksAreIoErrorsNeverWrongBytes() throws Exception {
    try (FaultProxy proxy = FaultProxy.in(reg, 4)) {
      HostDaemon d = HostDaemon.in(work, toml);
      try {
        d.start();
        Path mnt = d.mount(proxy.host() + repo, work.resolve("mnt"));
        proxy.schedule(
            FaultProxy.Schedule.always(
                FaultProxy.Fault.CORRUPT)); // every blob body has flipped bits
        List<HostReads.Outcome> outcomes = finish(startReaders(mnt, "corrupt"), "corrupt chunks");
        assertTrue(
            outcomes.stream().allMatch(HostReads.Outcome::ioError),
            "every chunk was corrupt: " + outcomes);
        assertTrue(
            d.metric("lazypull_integrity_mismatches_total{source=\"origin\"}") >= 1,
            "caught by chunk verification:\n" + d.logText());
        assertFalse(outcomes.isEmpty());
        proxy.schedule(FaultProxy.Schedule.none());
        everyFileReadsRight(mnt, "corrupt");
      } finally {
        d.cleanUp();
      }
    }
  }

  @Test
  void aCleanStopWithAMountInUseLeavesItMountedAndItsReadsWaitForTheNextDaemon() throws Exception {
    try (FaultProxy proxy = FaultProxy.in(reg, 5)) {
      HostDaemon d = HostDaemon.in(work, toml);
      Process holder = null;
      try {
        d.start();
        ProcessHandle keeper = d.keeper().orElseThrow();
        Path mnt = d.mount(proxy.host() + repo, work.resolve("mnt"));
        holder =
            new ProcessBuilder("sleep", "600")
                .directory(mnt.toFile())
                .start(); // the mount is in use
        d.stop(); // SIGTERM: a clean stop
        assertTrue(d.logText().contains("mounts still in use stay mounted: " + mnt), d.logText());
        assertEquals(List.of(mnt.toString()), d.mountsUnderWork(), "a busy mount is not detached");
        assertTrue(keeper.isAlive(), "the keeper keeps the group for it");
        // with no daemon, a cold read waits for one: it is not let through over a hole
        HostReads.Reader reader =
            HostReads.start(
                mnt.resolve("big0.bin"),
                tree.resolve("big0.bin"),
                work.resolve("stopped-big0.copy"));
        Await.until(
            reader::waitsOnFanotify, Duration.ofSeconds(30), "the reader waiting on its event");
        d.start();
        assertTrue(d.logText().contains("from the keeper"), d.logText());
        HostReads.Outcome o = HostReads.finish(reader, true);
        System.out.println("read across a clean stop with the mount in use: " + o);
        everyFileReadsRight(mnt, "stopped");
        holder.destroy();
        holder.waitFor(10, TimeUnit.SECONDS);
        d.stop();
        assertEquals(
            List.of(), d.mountsUnderWork(), "no longer in use: unmounted by the clean stop");
        assertTrue(
            keeper.onExit().orTimeout(30, TimeUnit.SECONDS).handle((p, t) -> t == null).join(),
            "and the keeper ends");
      } finally {
        if (holder != null) {
          holder.destroyForcibly();
        }
        d.cleanUp();
      }
    }
  }

  /**
   * A service manager releases its fd store when the service stops (the supervisor exits, as
   * systemd 252 closes the store of a stopped unit): a clean stop with a busy mount hands the group
   * to a keeper first, and the next daemon takes it back into the store.
   */
  @Test
  void aCleanStopUnderTheFdStoreSupervisorWithAMountInUseHandsTheGroupToAKeeper() throws Exception {
    Path supervisor = supervisor();
    try (FaultProxy proxy = FaultProxy.in(reg, 7)) {
      HostDaemon d = underSupervisor(supervisor);
      Process holder = null;
      try {
        d.start();
        assertTrue(d.keeper().isEmpty(), "the fd store keeps the group while the daemon runs");
        Path mnt = d.mount(proxy.host() + repo, work.resolve("mnt"));
        holder = new ProcessBuilder("sleep", "600").directory(mnt.toFile()).start();
        d.stop(); // SIGTERM through the supervisor, which then exits and closes its store
        assertFalse(d.isAlive(), "the supervisor ended with the daemon: its store is closed");
        assertTrue(d.logText().contains("mounts still in use stay mounted: " + mnt), d.logText());
        assertEquals(List.of(mnt.toString()), d.mountsUnderWork(), "a busy mount is not detached");
        ProcessHandle keeper = d.keeper().orElseThrow(() -> new AssertionError(d.logText()));
        // with no daemon and no store, a cold read waits: it is not let through over a hole
        HostReads.Reader reader =
            HostReads.start(
                mnt.resolve("big1.bin"), tree.resolve("big1.bin"), work.resolve("svc-big1.copy"));
        Await.until(
            reader::waitsOnFanotify, Duration.ofSeconds(30), "the reader waiting on its event");
        d.start();
        assertTrue(d.logText().contains("from the keeper"), d.logText());
        d.awaitLog("@@SUPERVISOR stored name=fanotify", 10); // back in the store
        assertTrue(
            keeper.onExit().orTimeout(30, TimeUnit.SECONDS).handle((p, t) -> t == null).join(),
            "the keeper ends once the store holds the group again");
        HostReads.Outcome o = HostReads.finish(reader, true);
        System.out.println("read across a clean stop of a supervised daemon, mount in use: " + o);
        everyFileReadsRight(mnt, "svc");
        holder.destroy();
        holder.waitFor(10, TimeUnit.SECONDS);
        d.stop();
        assertEquals(List.of(), d.mountsUnderWork(), "no longer in use: unmounted");
        assertTrue(d.keeper().isEmpty(), "and no keeper is left");
      } finally {
        if (holder != null) {
          holder.destroyForcibly();
        }
        d.cleanUp();
      }
    }
  }

  @Test
  void aKeeperThatDiesIsReplacedSoALaterCrashStillFailsClosed() throws Exception {
    try (FaultProxy proxy = FaultProxy.in(reg, 6)) {
      HostDaemon d = HostDaemon.in(work, toml);
      try {
        d.start();
        ProcessHandle first = d.keeper().orElseThrow();
        Path mnt = d.mount(proxy.host() + repo, work.resolve("mnt"));
        first.destroyForcibly(); // SIGKILL to the keeper
        Await.until(
            () -> d.keeper().filter(k -> k.pid() != first.pid()).isPresent(),
            Duration.ofSeconds(60),
            "a new keeper");
        d.awaitLog("a new keeper holds it now", 10);
        proxy.schedule(FaultProxy.Schedule.always(FaultProxy.Fault.STALL));
        List<HostReads.Reader> readers = startReaders(mnt, "keeper");
        awaitReadsInFlight(d, readers);
        d.kill9();
        for (HostReads.Reader r : readers) {
          assertTrue(
              r.process().isAlive() && r.waitsOnFanotify(),
              "the new keeper holds the group: " + r.file());
        }
        proxy.schedule(FaultProxy.Schedule.none());
        d.start();
        finish(readers, "kill -9 after a keeper was replaced");
        everyFileReadsRight(mnt, "keeper");
      } finally {
        d.cleanUp();
      }
    }
  }
}
