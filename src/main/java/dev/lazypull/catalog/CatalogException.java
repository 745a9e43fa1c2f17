package dev.lazypull.catalog;

import java.io.IOException;

/**
 * A registration the catalog refuses (conflicting fsid, bad names) or a catalog file it cannot
 * read.
 */
public final class CatalogException extends IOException {
  private static final long serialVersionUID = 1L;

  public CatalogException(String message) {
    super(message);
  }

  public CatalogException(String message, Throwable cause) {
    super(message, cause);
  }
}
