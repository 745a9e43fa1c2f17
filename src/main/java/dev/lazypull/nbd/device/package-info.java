/**
 * What an NBD export serves: the {@link dev.lazypull.nbd.device.ExportDevice} address space (data runs fetched
 * lazily, zero runs), composed from segments ({@link dev.lazypull.nbd.device.SegmentDevice}) and built from an
 * image, flattened or raw ({@link dev.lazypull.nbd.device.ImageDevices}); and the kernel's {@code /dev/nbdN}
 * attached to a server's socketpairs ({@link dev.lazypull.nbd.device.KernelNbdDevice}).
 */
package dev.lazypull.nbd.device;
