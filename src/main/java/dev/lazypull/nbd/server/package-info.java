/**
 * The NBD server of one read-only export: listening ({@link ListenAddress}), one thread per
 * connection running the option negotiation ({@link Negotiator}), then the request loop: transport
 * bytes through the protocol's request decoder, each request to the request handler, which answers
 * from the device (cached READs inline, the others from a shared reply pool when their fetch
 * completes) through the connection's serialised write side. Counters in {@link NbdStats}.
 */
package dev.lazypull.nbd.server;
