// ImageStore: Glance's image data path: streaming ingest with sha256, format sniffing
// (qcow2, raw, iso, kernel, initramfs), qcow2 header inspection, and copy-on-write overlays.
