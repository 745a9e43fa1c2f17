/**
 * What an NBD export serves: the {@link ExportDevice} address space (data runs fetched lazily, zero
 * runs), composed from segments ({@link SegmentDevice}) and built from an image, flattened or raw
 * ({@link ImageDevices}); and the kernel's {@code /dev/nbdN} attached to a server's socketpairs
 * ({@link KernelNbdDevice}).
 */
package dev.lazypull.nbd.device;
