package dev.lazypull.image;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;
import dev.lazypull.sys.NativeSha256;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.regex.Pattern;

/**
 * A content digest, {@code sha256:<64 lowercase hex>}; the only algorithm lazypull reads or writes.
 */
public record Digest(String hex) {
  private static final Pattern HEX64 = Pattern.compile("[0-9a-f]{64}");

  public Digest {
    if (hex == null || !HEX64.matcher(hex).matches()) {
      throw new IllegalArgumentException("not a sha256 hex digest: " + hex);
    }
  }

  /**
   * Parses {@code sha256:<hex>}; anything else (other algorithms, bad hex) is an error naming the
   * input.
   */
  @JsonCreator
  public static Digest parse(String s) {
    if (s == null || !s.startsWith("sha256:")) {
      throw new IllegalArgumentException("unsupported digest (want sha256:<64 hex>): " + s);
    }
    return new Digest(s.substring("sha256:".length()));
  }

  /** True for a 64-char lowercase hex string (an EROFS device tag naming a blob). */
  public static boolean isHex(String s) {
    return s != null && HEX64.matcher(s).matches();
  }

  public static Digest of(byte[] bytes) {
    return new Digest(HexFormat.of().formatHex(sha256().digest(bytes)));
  }

  /**
   * The sha256 of {@code data}'s remaining bytes, its position unchanged: through libcrypto for a
   * direct buffer where it is available (full speed from a process's first byte, see {@link
   * NativeSha256}), else the JDK's.
   */
  public static byte[] sha256Of(ByteBuffer data) {
    if (data.isDirect() && NativeSha256.available()) {
      return NativeSha256.digest(data);
    }
    MessageDigest md = sha256();
    md.update(data.duplicate());
    return md.digest();
  }

  public static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("JDK without SHA-256", e);
    }
  }

  @JsonValue
  @Override
  public String toString() {
    return "sha256:" + hex;
  }

  /** First 12 hex digits, for logs. */
  public String shortHex() {
    return hex.substring(0, 12);
  }
}
