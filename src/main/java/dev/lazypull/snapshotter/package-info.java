/**
 * A containerd snapshotter (docs/containerd.md): the snapshots API of containerd, served over gRPC
 * to containerd's proxy plugin, over directories of its own root — overlayfs upper and work
 * directories, as containerd's overlayfs snapshotter lays them out — and over lazy layers: a
 * lazypull image is one EROFS mount, prepared by the daemon (through its control socket) and
 * mounted here, which becomes the lower layer of its containers' overlays.
 *
 * <p>{@link Snapshotter} holds the semantics (keys, parents, kinds, labels, errors as containerd's
 * errdefs classify them) over a persisted {@link MetaStore}; {@link RemoteLayers} answers
 * containerd's remote-snapshot label protocol; {@link SnapshotsService} is the gRPC face; {@link
 * ImagePuller} is the client side ({@code lazypull pull}) that creates an image in containerd and
 * prepares its snapshots with the same labels CRI passes.
 */
package dev.lazypull.snapshotter;
