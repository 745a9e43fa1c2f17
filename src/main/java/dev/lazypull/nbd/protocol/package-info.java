/**
 * The NBD wire format (NetworkBlockDevice/nbd doc/proto.md), as pure codecs over big-endian ByteBuffers: the
 * constants ({@link dev.lazypull.nbd.protocol.Nbd}), the handshake's options and option replies
 * ({@link dev.lazypull.nbd.protocol.OptionCodec}), transmission requests and their framing
 * ({@link dev.lazypull.nbd.protocol.NbdRequest}, {@link dev.lazypull.nbd.protocol.RequestDecoder}), simple and
 * structured replies ({@link dev.lazypull.nbd.protocol.ReplyCodec}, {@link dev.lazypull.nbd.protocol.ReplyEncoder}).
 * No I/O and no threads: malformed input is an {@link dev.lazypull.nbd.protocol.NbdProtocolException}.
 */
package dev.lazypull.nbd.protocol;
