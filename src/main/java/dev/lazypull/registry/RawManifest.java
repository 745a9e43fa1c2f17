package dev.lazypull.registry;

import dev.lazypull.image.Digest;

/**
 * A manifest or index exactly as the registry sent it: the bytes (whose sha256 is {@link #digest})
 * and the media type. Copies must push these bytes unchanged, or the digest changes.
 */
public record RawManifest(byte[] bytes, String mediaType, Digest digest) {}
