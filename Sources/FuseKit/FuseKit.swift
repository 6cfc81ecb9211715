// FuseKit: the C boundary for libfuse3's low-level API, the only user of CFuse.
