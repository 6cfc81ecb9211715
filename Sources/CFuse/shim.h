// C boundary for libfuse3's low-level API. Only FuseKit imports this module.
#ifndef CLOUDFS_CFUSE_SHIM_H
#define CLOUDFS_CFUSE_SHIM_H
#define FUSE_USE_VERSION 35
#include <fuse3/fuse_lowlevel.h>
#include <fuse3/fuse.h>
#include <sys/stat.h>
#include <errno.h>
#endif
