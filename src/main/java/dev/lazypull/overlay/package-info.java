/**
 * Writable copy-on-write block devices over a read-only base: the per-export overlay (a sparse data
 * file and the block states, dirty and zero, in roaring bitmaps), its state file and crash
 * semantics, and snapshot diffs (the dirty blocks packed, with their block maps). Below the front
 * ends: the NBD export adapts it ({@code nbd.device.OverlayDevice}); nothing here knows NBD.
 */
package dev.lazypull.overlay;
