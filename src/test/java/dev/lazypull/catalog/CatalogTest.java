package dev.lazypull.catalog;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.Json;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.image.PullOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CatalogTest {
  @TempDir Path state;

  static Descriptor desc(String seed, long size) {
    return new Descriptor(MediaTypes.EROFS_BLOB, Digest.of(seed.getBytes()), size);
  }

  static ImageRecord image(String fsid, String domain, Descriptor... blobs) {
    List<Descriptor> list = List.of(blobs);
    return new ImageRecord(
        fsid,
        domain,
        "oci:/x:" + fsid,
        Digest.of(fsid.getBytes()),
        desc("boot-" + fsid, 8192),
        list,
        list.stream().map(d -> d.digest().hex()).toList(),
        false);
  }

  @Test
  void looksUpBootstrapAndBlobsByVolumeAndCookie() throws Exception {
    Catalog c = Catalog.load(state);
    Descriptor blob = desc("blob", 1 << 20);
    ImageRecord r = c.register(image("img1", null, blob), false);
    BlobBinding boot = c.lookup("erofs,img1", "img1").orElseThrow();
    assertTrue(boot.isBootstrap());
    assertEquals(r.bootstrap(), boot.blob());
    BlobBinding data = c.lookup("erofs,img1", blob.digest().hex()).orElseThrow();
    assertEquals(1, data.deviceId());
    assertEquals(blob, data.blob());
    assertTrue(c.lookup("erofs,other", "img1").isEmpty());
    assertTrue(c.lookup("img1", "img1").isEmpty(), "volume keys always carry the erofs, prefix");
    assertTrue(c.lookup("erofs,img1", "nope").isEmpty());
  }

  @Test
  void domainVolumesHoldSeveralImagesSharingBlobs() throws Exception {
    Catalog c = Catalog.load(state);
    Descriptor shared = desc("shared", 4096);
    c.register(image("a", "dom", shared), false);
    c.register(image("b", "dom", shared, desc("extra", 4096)), false);
    assertEquals("a", c.lookup("erofs,dom", "a").orElseThrow().image().fsid());
    assertEquals("b", c.lookup("erofs,dom", "b").orElseThrow().image().fsid());
    assertEquals(shared, c.lookup("erofs,dom", shared.digest().hex()).orElseThrow().blob());
    assertTrue(c.lookup("erofs,a", "a").isEmpty(), "a domain image is not in its own-fsid volume");
  }

  @Test
  void persistsAcrossRestartsAndRefusesConflicts() throws Exception {
    Catalog c = Catalog.load(state);
    ImageRecord r = c.register(image("img1", "d", desc("blob", 4096)), false);
    assertEquals(r, c.register(r, false), "re-registering the same image is a no-op");
    ImageRecord other = image("img1", null, desc("other", 4096));
    CatalogException e = assertThrows(CatalogException.class, () -> c.register(other, false));
    assertTrue(e.getMessage().contains("already registered"));
    Catalog reloaded = Catalog.load(state);
    assertEquals(List.of(r), reloaded.list());
    reloaded.register(other, true);
    assertEquals(List.of(other), Catalog.load(state).list());
    assertTrue(Catalog.load(state).unregister("img1").isPresent());
    assertTrue(Catalog.load(state).list().isEmpty());
  }

  @Test
  void aCorruptCatalogIsAnErrorAndIsNotOverwritten() throws Exception {
    Files.writeString(state.resolve(Catalog.FILE_NAME), "{ not json");
    CatalogException e = assertThrows(CatalogException.class, () -> Catalog.load(state));
    assertTrue(e.getMessage().contains(Catalog.FILE_NAME));
    assertEquals("{ not json", Files.readString(state.resolve(Catalog.FILE_NAME)));
  }

  @Test
  void namesAreRestrictedToWhatMountOptionsAndCacheFilesCanCarry() {
    assertThrows(IllegalArgumentException.class, () -> image("a,b", null));
    assertThrows(IllegalArgumentException.class, () -> image("a=b", null));
    assertThrows(IllegalArgumentException.class, () -> image("../x", null));
    assertThrows(IllegalArgumentException.class, () -> image("x".repeat(200), null));
    assertThrows(IllegalArgumentException.class, () -> image("ok", "bad domain"));
  }

  @Test
  void mountOptionsNameTheDomainAndUntaggedDevices() {
    Descriptor b1 = desc("1", 4096);
    Descriptor b2 = desc("2", 4096);
    ImageRecord tagged = image("f", "d", b1, b2);
    assertEquals("fsid=f,domain_id=d", tagged.mountOptions());
    ImageRecord untagged =
        new ImageRecord(
            "f",
            null,
            "r",
            Digest.of(new byte[1]),
            desc("boot", 1),
            List.of(b1, b2),
            List.of(b1.digest().hex(), b2.digest().hex()),
            true);
    assertEquals(
        "fsid=f,device=" + b1.digest().hex() + ",device=" + b2.digest().hex(),
        untagged.mountOptions());
  }

  @Test
  void perImageRegistrySettingsPersistAcrossAReloadAndAreOnlyEverAddedTo() throws Exception {
    Catalog c = Catalog.load(state);
    ImageRecord plain =
        image("img1", null, desc("blob", 4096)).withPull(new PullOptions(true, "linux/arm64"));
    c.register(plain, false);
    c.register(image("img2", null, desc("blob2", 4096)), false);
    String json = Files.readString(state.resolve(Catalog.FILE_NAME));
    assertTrue(json.contains("\"pull\"") && json.contains("\"plainHttp\" : true"), json);
    assertEquals(
        1, json.split("\"pull\"", -1).length - 1, "absent for an image without settings: " + json);

    Catalog reloaded = Catalog.load(state);
    assertEquals(plain, reloaded.get("img1").orElseThrow());
    assertEquals(new PullOptions(true, "linux/arm64"), reloaded.get("img1").orElseThrow().pull());
    assertEquals(PullOptions.DEFAULT, reloaded.get("img2").orElseThrow().pullOptions());
    assertEquals(null, reloaded.get("img2").orElseThrow().pull());

    // the same image registered again without settings keeps them; with plain HTTP it gains it
    assertEquals(plain, reloaded.register(image("img1", null, desc("blob", 4096)), false));
    ImageRecord gained =
        reloaded.register(
            image("img2", null, desc("blob2", 4096)).withPull(new PullOptions(true, null)), false);
    assertEquals(new PullOptions(true, null), gained.pull());
    assertEquals(new PullOptions(true, null), Catalog.load(state).get("img2").orElseThrow().pull());
    // another image under a taken fsid is still refused
    assertThrows(
        CatalogException.class,
        () ->
            reloaded.register(
                image("img2", null, desc("other", 4096)).withPull(new PullOptions(true, null)),
                false));
  }

  @Test
  void aCatalogWrittenBeforePerImageSettingsExistedLoads() throws Exception {
    Descriptor boot = desc("boot", 8192);
    Descriptor blob = desc("blob", 4096);
    String old =
        "{\n  \"version\" : 1,\n  \"images\" : [ {\n    \"fsid\" : \"old\",\n"
            + "    \"reference\" : \"127.0.0.1:5000/acc/app:v1\",\n"
            + "    \"manifestDigest\" : \""
            + Digest.of("m".getBytes())
            + "\",\n"
            + "    \"bootstrap\" : "
            + Json.MAPPER.writeValueAsString(boot)
            + ",\n"
            + "    \"blobs\" : [ "
            + Json.MAPPER.writeValueAsString(blob)
            + " ],\n"
            + "    \"deviceNames\" : [ \""
            + blob.digest().hex()
            + "\" ]\n  } ]\n}\n";
    Files.createDirectories(state);
    Files.writeString(state.resolve(Catalog.FILE_NAME), old);
    ImageRecord r = Catalog.load(state).get("old").orElseThrow();
    assertEquals(null, r.pull());
    assertEquals(PullOptions.DEFAULT, r.pullOptions());
    assertEquals(List.of(blob), r.blobs());
    assertEquals("127.0.0.1:5000/acc/app:v1", r.reference());
  }

  /**
   * An image with no data blobs (a single-device mkfs.erofs image, imported) is written and read
   * back.
   */
  @Test
  void anImageWithoutDataBlobsSurvivesARestart() throws Exception {
    Catalog c = Catalog.load(state);
    ImageRecord r = c.register(image("single", null), false);
    assertEquals(List.of(r), Catalog.load(state).list(), "the catalog a restarted daemon reads");
  }
}
