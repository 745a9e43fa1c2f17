/**
 * The NBD wire format (NetworkBlockDevice/nbd doc/proto.md), as pure codecs over big-endian
 * ByteBuffers: the constants ({@link Nbd}), the handshake's options and option replies ({@link
 * OptionCodec}), transmission requests and their framing ({@link NbdRequest}, {@link
 * RequestDecoder}), simple and structured replies ({@link ReplyCodec}, {@link ReplyEncoder}). No
 * I/O and no threads: malformed input is an {@link NbdProtocolException}.
 */
package dev.lazypull.nbd.protocol;
