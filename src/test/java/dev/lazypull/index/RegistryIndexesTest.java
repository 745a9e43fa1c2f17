package dev.lazypull.index;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.lazypull.image.Descriptor;
import dev.lazypull.image.Digest;
import dev.lazypull.image.Json;
import dev.lazypull.image.MediaTypes;
import dev.lazypull.registry.CredentialStore;
import dev.lazypull.registry.RegistryClient;
import dev.lazypull.registry.RegistryConfig;
import dev.lazypull.registry.Repository;
import dev.lazypull.testing.FakeRegistry;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.junit5.StartStop;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Finding an index next to its image: the referrers API where the registry has it, the referrers
 * tag schema where it does not (an image index at {@code sha256-<hex>} that other artifacts share),
 * the artifact's own tag last.
 */
class RegistryIndexesTest {
  @StartStop public final MockWebServer server = new MockWebServer();
  private final FakeRegistry reg = new FakeRegistry();
  private Repository repo;
  private RegistryClient client;
  private final Digest subject = Digest.of("image".getBytes(StandardCharsets.UTF_8));

  @BeforeEach
  void setUp() throws Exception {
    server.setDispatcher(reg);
    repo = new Repository(server.getHostName() + ":" + server.getPort(), "team/app");
    client =
        new RegistryClient(
            RegistryConfig.defaults().withPlainHttp(true), CredentialStore.anonymous(), d -> {});
  }

  private Descriptor artifact(String tag, String salt) {
    byte[] bytes =
        ("{\"schemaVersion\":2,\"mediaType\":\""
                + MediaTypes.OCI_MANIFEST
                + "\",\"artifactType\":\""
                + IndexArtifact.ARTIFACT_TYPE
                + "\",\"layers\":[],\"annotations\":{\"salt\":\""
                + salt
                + "\"}}")
            .getBytes(StandardCharsets.UTF_8);
    Digest d = reg.putManifest("team/app", tag, bytes, MediaTypes.OCI_MANIFEST);
    return new Descriptor(MediaTypes.OCI_MANIFEST, d, bytes.length);
  }

  private List<String> referrersTagEntries() throws Exception {
    JsonNode idx =
        Json.MAPPER.readTree(reg.manifests.get("team/app:sha256-" + subject.hex()).bytes());
    List<String> out = new ArrayList<>();
    idx.path("manifests")
        .forEach(m -> out.add(m.path("artifactType").asText() + " " + m.path("digest").asText()));
    return out;
  }

  @Test
  void withoutTheReferrersApiTheReferrersTagListsTheIndexBesideOtherArtifacts() throws Exception {
    String sig =
        "{\"schemaVersion\":2,\"mediaType\":\""
            + MediaTypes.OCI_INDEX
            + "\",\"manifests\":[{\"mediaType\":\""
            + MediaTypes.OCI_MANIFEST
            + "\",\"digest\":\""
            + Digest.of(new byte[] {1})
            + "\",\"size\":1,"
            + "\"artifactType\":\"application/vnd.dev.sigstore.bundle+json\"}]}";
    reg.putManifest(
        "team/app",
        "sha256-" + subject.hex(),
        sig.getBytes(StandardCharsets.UTF_8),
        MediaTypes.OCI_INDEX);
    Descriptor first = artifact(IndexArtifact.localTag(subject), "1");
    IndexedImages.RegistryIndexes.link(client, repo, subject, first);
    assertEquals(
        List.of(
            "application/vnd.dev.sigstore.bundle+json " + Digest.of(new byte[] {1}),
            IndexArtifact.ARTIFACT_TYPE + " " + first.digest()),
        referrersTagEntries(),
        "the signature's entry is kept");
    assertEquals(
        first.digest(),
        IndexedImages.RegistryIndexes.find(client, repo, subject).orElseThrow().digest());

    Descriptor second = artifact(null, "2");
    IndexedImages.RegistryIndexes.link(client, repo, subject, second);
    assertEquals(
        List.of(
            "application/vnd.dev.sigstore.bundle+json " + Digest.of(new byte[] {1}),
            IndexArtifact.ARTIFACT_TYPE + " " + second.digest()),
        referrersTagEntries(),
        "the older index replaced");
    assertEquals(
        second.digest(),
        IndexedImages.RegistryIndexes.find(client, repo, subject).orElseThrow().digest(),
        "the referrers tag wins over the artifact's own tag");
  }

  @Test
  void theReferrersApiIsAskedFirstAndNeedsNoTag() throws Exception {
    Descriptor a = artifact(null, "api");
    String listing =
        "{\"schemaVersion\":2,\"mediaType\":\""
            + MediaTypes.OCI_INDEX
            + "\",\"manifests\":[{"
            + "\"mediaType\":\""
            + MediaTypes.OCI_MANIFEST
            + "\",\"digest\":\""
            + a.digest()
            + "\",\"size\":"
            + a.size()
            + ",\"artifactType\":\""
            + IndexArtifact.ARTIFACT_TYPE
            + "\"}]}";
    reg.intercept =
        req ->
            req.getUrl().encodedPath().equals("/v2/team/app/referrers/" + subject)
                    && IndexArtifact.ARTIFACT_TYPE.equals(
                        req.getUrl().queryParameter("artifactType"))
                ? new MockResponse.Builder()
                    .code(200)
                    .addHeader("Content-Type", MediaTypes.OCI_INDEX)
                    .body(listing)
                    .build()
                : null;
    assertEquals(
        a.digest(),
        IndexedImages.RegistryIndexes.find(client, repo, subject).orElseThrow().digest());
    IndexedImages.RegistryIndexes.link(client, repo, subject, a);
    assertTrue(
        reg.requests.stream().noneMatch(r -> r.getMethod().equals("PUT")),
        "a registry with the referrers API lists the index by its subject: no referrers tag is written");
  }

  @Test
  void theArtifactsOwnTagIsTheLastRegistryFallbackAndNothingIsEmpty() throws Exception {
    assertTrue(IndexedImages.RegistryIndexes.find(client, repo, subject).isEmpty());
    Descriptor a = artifact(IndexArtifact.localTag(subject), "own");
    assertArrayEquals(
        reg.manifests.get("team/app:" + a.digest()).bytes(),
        IndexedImages.RegistryIndexes.find(client, repo, subject).orElseThrow().bytes());
  }
}
