package dev.lazypull;

/** The release version, reported by {@code lazypull --version} and the control API. */
public final class Version {
  public static final String VERSION = "0.1.0";

  private Version() {}
}
