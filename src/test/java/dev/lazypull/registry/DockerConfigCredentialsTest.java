package dev.lazypull.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DockerConfigCredentialsTest {
  @TempDir Path tmp;

  private static String b64(String s) {
    return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
  }

  private DockerConfigCredentials store(String json, String env) throws IOException {
    Path f = tmp.resolve("config.json");
    Files.writeString(f, json);
    return new DockerConfigCredentials(f, env, new CredentialHelper(List.of(tmp.resolve("bin"))));
  }

  /**
   * A fake docker-credential-NAME that answers from a case statement on the server URL it reads.
   */
  private void helper(String name, String script) throws IOException {
    Path bin = Files.createDirectories(tmp.resolve("bin"));
    Path p = bin.resolve("docker-credential-" + name);
    Files.writeString(p, "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread -r url || true\n" + script);
    Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwxr-xr-x"));
  }

  @Test
  void authsEntriesDecodeAndHubAliasesAndLegacyKeysMatch() throws Exception {
    DockerConfigCredentials s =
        store(
            "{\"auths\":{"
                + "\"https://index.docker.io/v1/\":{\"auth\":\""
                + b64("hubuser:hub:pass:with:colons\0\0")
                + "\"},"
                + "\"https://reg.example:5000/v1/\":{\"auth\":\""
                + b64("u:p")
                + "\"},"
                + "\"tok.example\":{\"identitytoken\":\"refresh-1\"},"
                + "\"rt.example\":{\"registrytoken\":\"bearer-1\"}}}",
            null);
    Credentials hub = s.lookup("docker.io");
    assertEquals("hubuser", hub.username());
    assertEquals(
        "hub:pass:with:colons", hub.password(), "split at the first colon, trailing NULs trimmed");
    assertEquals(hub, s.lookup("registry-1.docker.io"));
    assertEquals(Credentials.basic("u", "p"), s.lookup("reg.example:5000"));
    assertEquals("refresh-1", s.lookup("tok.example").identityToken());
    assertEquals("bearer-1", s.lookup("rt.example").registryToken());
    assertNull(s.lookup("elsewhere.example"));
  }

  @Test
  void helpersOverrideTheStoreAndCredentialsNotFoundMeansAnonymous() throws Exception {
    helper(
        "desktop",
        "case \"$url\" in\n"
            + "  https://index.docker.io/v1/) echo '{\"ServerURL\":\"x\",\"Username\":\"hub\",\"Secret\":\"hubsecret\"}';;\n"
            + "  *) echo 'credentials not found in native keychain'; exit 1;;\nesac\n");
    helper(
        "ecr",
        "echo '{\"ServerURL\":\"'\"$url\"'\",\"Username\":\"<token>\",\"Secret\":\"idtok\"}'\n");
    DockerConfigCredentials s =
        store(
            "{\"credsStore\":\"desktop\",\"credHelpers\":{\"1.dkr.ecr.example\":\"ecr\"},"
                + "\"auths\":{\"fallback.example\":{\"auth\":\""
                + b64("f:g")
                + "\"}}}",
            null);
    assertEquals(Credentials.basic("hub", "hubsecret"), s.lookup("docker.io"));
    Credentials ecr = s.lookup("1.dkr.ecr.example");
    assertEquals("idtok", ecr.identityToken());
    assertNull(ecr.username());
    assertNull(
        s.lookup("nowhere.example"), "not found in the helper and no auths entry: anonymous");
    assertEquals(
        Credentials.basic("f", "g"), s.lookup("fallback.example"), "helper has none: auths entry");
  }

  @Test
  void helperFailuresAreErrorsWithoutTheirOutput() throws Exception {
    helper("broken", "echo 'SECRET-ON-STDOUT'; echo 'keychain locked' >&2; exit 2\n");
    helper("garbage", "echo 'not json SECRET'\n");
    IOException e =
        assertThrows(
            IOException.class,
            () -> store("{\"credsStore\":\"broken\"}", null).lookup("a.example"));
    assertTrue(
        e.getMessage().contains("exited 2")
            && e.getMessage().contains("keychain locked")
            && !e.getMessage().contains("SECRET"),
        e.getMessage());
    e =
        assertThrows(
            IOException.class,
            () -> store("{\"credsStore\":\"garbage\"}", null).lookup("a.example"));
    assertFalse(e.getMessage().contains("SECRET"), e.getMessage());
    e =
        assertThrows(
            IOException.class,
            () -> store("{\"credsStore\":\"missing\"}", null).lookup("a.example"));
    assertTrue(e.getMessage().contains("docker-credential-missing"), e.getMessage());
    e =
        assertThrows(
            IOException.class,
            () -> store("{\"credsStore\":\"../../bin/sh\"}", null).lookup("a.example"));
    assertTrue(e.getMessage().contains("invalid credential helper name"), e.getMessage());
  }

  @Test
  void theEnvironmentVariableIsConsultedFirstAndMissingFilesMeanAnonymous() throws Exception {
    DockerConfigCredentials s =
        store(
            "{\"auths\":{\"a.example\":{\"auth\":\"" + b64("file:x") + "\"}}}",
            "{\"auths\":{\"a.example\":{\"auth\":\"" + b64("env:y") + "\"}}}");
    assertEquals("env", s.lookup("a.example").username());
    assertNull(
        new DockerConfigCredentials(tmp.resolve("nope.json"), null, new CredentialHelper(List.of()))
            .lookup("a.example"));
  }

  @Test
  void malformedFilesAreRefusedWithoutShowingTheirContents() throws Exception {
    IOException e =
        assertThrows(
            IOException.class, () -> store("{\"auths\": {\"x\": SECRET", null).lookup("x"));
    assertTrue(
        e.getMessage().contains("config.json") && !e.getMessage().contains("SECRET"),
        e.getMessage());
    e =
        assertThrows(
            IOException.class,
            () -> store("{\"auths\":{\"x\":{\"auth\":\"!!notbase64\"}}}", null).lookup("x"));
    assertTrue(e.getMessage().contains("base64"), e.getMessage());
    e =
        assertThrows(
            IOException.class,
            () ->
                store("{\"auths\":{\"x\":{\"auth\":\"" + b64("nocolon") + "\"}}}", null)
                    .lookup("x"));
    assertTrue(e.getMessage().contains("user:password"), e.getMessage());
  }

  @Test
  void defaultPathFollowsDockerConfig() {
    assertEquals(
        Path.of("/etc/d/config.json"),
        DockerConfigCredentials.defaultPath(Map.of("DOCKER_CONFIG", "/etc/d"), "/home/x"));
    assertEquals(
        Path.of("/home/x/.docker/config.json"),
        DockerConfigCredentials.defaultPath(Map.of(), "/home/x"));
  }
}
