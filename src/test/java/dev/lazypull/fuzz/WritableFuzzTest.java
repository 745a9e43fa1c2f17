package dev.lazypull.fuzz;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.BlockMap;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.DiskImage;
import dev.lazypull.image.Json;
import dev.lazypull.image.Manifest;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.overlay.BlockStates;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.roaringbitmap.RoaringBitmap;

/**
 * Fuzzes what the writable side reads from disk or a registry: overlay state files, snapshot block
 * maps and disk image manifests. Each fails only with an IOException naming the problem, or decodes
 * to something that keeps its rules (disjoint sets, blocks inside the device).
 */
class WritableFuzzTest {
  @Test
  void stateFilesFailOnlyWithClearErrors() {
    BlockStates s = new BlockStates(100_000);
    s.markDirty(3, 900);
    s.markZero(70_000, 90_000);
    s.markDirty(99_999, 100_000);
    byte[] seed = s.encode(4096, 100_000L * 4096, 7);
    long runs =
        Fuzzer.fuzz(
            "state-file",
            List.of(seed, new BlockStates(5).encode(512, 2500, 0)),
            Set.of(IOException.class),
            1 << 16,
            input -> {
              BlockStates.Decoded d = BlockStates.decode(input);
              BlockStates st = d.states();
              assertTrue(!RoaringBitmap.intersects(st.dirty(), st.zero()));
              assertTrue(
                  st.dirty().isEmpty() || Integer.toUnsignedLong(st.dirty().last()) < st.blocks());
            });
    assertTrue(runs > 1000);
  }

  @Test
  void blockMapsFailOnlyWithClearErrors() {
    RoaringBitmap data = new RoaringBitmap();
    data.add(10L, 5000L);
    RoaringBitmap zero = RoaringBitmap.bitmapOf(6000, 6001, 123_456);
    byte[] seed = new BlockMap(4096, 200_000L * 4096, data, zero).encode();
    long runs =
        Fuzzer.fuzz(
            "block-map",
            List.of(seed),
            Set.of(IOException.class),
            1 << 16,
            input -> {
              BlockMap m = BlockMap.decode(input);
              assertTrue(!RoaringBitmap.intersects(m.data(), m.zero()));
              assertTrue(
                  m.zero().isEmpty() || Integer.toUnsignedLong(m.zero().last()) < m.blocks());
            });
    assertTrue(runs > 1000);
  }

  @Test
  void diskManifestsFailOnlyWithClearErrors() {
    Descriptor disk =
        new Descriptor(
            MediaTypes.DISK_ZSTD,
            Digest.of("d".getBytes()),
            5000,
            Map.of("dev.lazypull.uncompressed-size", "1048576"),
            null);
    Descriptor table = new Descriptor(MediaTypes.CHUNK_DIGESTS, Digest.of("t".getBytes()), 104);
    Descriptor map = new Descriptor(MediaTypes.DISK_DIFF_MAP, Digest.of("m".getBytes()), 64);
    Descriptor diff =
        new Descriptor(
            MediaTypes.DISK_DIFF_ZSTD,
            Digest.of("x".getBytes()),
            300,
            Map.of("dev.lazypull.uncompressed-size", "8192"),
            null);
    Descriptor diffTable = new Descriptor(MediaTypes.CHUNK_DIGESTS, Digest.of("y".getBytes()), 104);
    Descriptor cfg = new Descriptor(MediaTypes.OCI_CONFIG, Digest.of("c".getBytes()), 2);
    Manifest m =
        DiskImage.manifest(
            cfg,
            List.of(
                DiskImage.dataLayer(disk, table),
                DiskImage.tableLayer(table, disk),
                DiskImage.mapLayer(map, 2, 4096),
                DiskImage.dataLayer(diff, diffTable),
                DiskImage.tableLayer(diffTable, diff)),
            1_000_000,
            "sha256:" + "a".repeat(64));
    byte[] seed = Json.write(m);
    long runs =
        Fuzzer.fuzz(
            "disk-manifest",
            List.of(seed),
            Set.of(IOException.class),
            8192,
            input -> {
              Manifest parsed = Json.parse(input, Manifest.class, "fuzzed manifest");
              DiskImage img = DiskImage.of("fuzz", Digest.of(input), parsed);
              assertTrue(img.size() > 0 && img.diffs().size() <= DiskImage.MAX_DIFFS);
            });
    assertTrue(runs > 100);
  }
}
