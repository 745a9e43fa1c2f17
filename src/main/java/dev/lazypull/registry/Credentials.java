package dev.lazypull.registry;

import java.nio.charset.StandardCharsets;
import java.util.Base64;

/**
 * What we may present to a registry host: a username and password, an OAuth2 refresh token
 * ("identity token", used with the token endpoint's POST flow) and/or a registry token sent as-is
 * as a Bearer token. {@link #toString} never prints a secret.
 */
record Credentials(String username, String password, String identityToken, String registryToken) {
  public static Credentials basic(String username, String password) {
    return new Credentials(username, password, null, null);
  }

  public boolean hasPassword() {
    return username != null && !username.isEmpty() && password != null;
  }

  /** {@code Basic base64(user:pass)}, or null without a username and password. */
  public String basicHeader() {
    if (!hasPassword()) {
      return null;
    }
    return "Basic "
        + Base64.getEncoder()
            .encodeToString((username + ":" + password).getBytes(StandardCharsets.UTF_8));
  }

  @Override
  public String toString() {
    return "Credentials[user="
        + (username == null ? "-" : username)
        + (password != null ? ", password=***" : "")
        + (identityToken != null ? ", identityToken=***" : "")
        + (registryToken != null ? ", registryToken=***" : "")
        + "]";
  }
}
