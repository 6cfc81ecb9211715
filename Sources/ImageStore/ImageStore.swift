// ImageStore: Glance's image data path, plus the copy-on-write disks Nova builds on it.
//
// - `ImageIngest` is one upload (Glance's "image data upload"): the FUSE WRITEs of `cp` go
//   with `pwrite` straight into the store file while a SHA-256 is computed incrementally.
// - `FormatSniffer` is Glance's image introspection (oslo.utils' format_inspector): it names
//   the format from the bytes (qcow2, raw, iso, aki kernel, ari initramfs), reads the qcow2
//   virtual size, and refuses unsafe qcow2 (backing file, external data file, encryption,
//   unknown features) before an image can become active.
// - `Overlay` creates an instance's root disk as a qcow2 overlay over an image (Nova's
//   libvirt image backend `qcow2`), written directly by `Qcow2Overlay`.
//
// Every OS call goes through `SystemCall`, which retries EINTR and captures errno at once.
