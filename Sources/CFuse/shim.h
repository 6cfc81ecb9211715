// C boundary for libfuse3's low-level API. Only FuseKit imports this module.
#ifndef CLOUDFS_CFUSE_SHIM_H
#define CLOUDFS_CFUSE_SHIM_H
#define FUSE_USE_VERSION 35
#include <fuse3/fuse_lowlevel.h>
#include <fuse3/fuse.h>
#include <sys/stat.h>
#include <errno.h>

// fuse_session_loop_mt is a function-like macro that selects a versioned symbol
// (fuse_session_loop_mt_32 at FUSE_USE_VERSION 35), and Swift cannot call macros.
// This wrapper also fills the version-35 `struct fuse_loop_config` for the caller.
static inline int cfuse_session_loop_mt(struct fuse_session *se, int clone_fd,
                                        unsigned int max_idle_threads) {
    struct fuse_loop_config config;
    config.clone_fd = clone_fd;
    config.max_idle_threads = max_idle_threads;
    return fuse_session_loop_mt(se, &config);
}

// fuse_session_new is a plain function in libfuse 3.14 but a macro (over
// _fuse_session_new with a version argument) from 3.17 on; calling it through
// this wrapper keeps FuseKit building against both.
static inline struct fuse_session *cfuse_session_new(struct fuse_args *args,
                                                     const struct fuse_lowlevel_ops *op,
                                                     size_t op_size, void *userdata) {
    return fuse_session_new(args, op, op_size, userdata);
}

// struct fuse_file_info keeps its open flags in C bit-fields; these setters keep
// FuseKit independent of how a given Swift compiler imports bit-fields.
static inline void cfuse_fi_set_open_flags(struct fuse_file_info *fi, int direct_io,
                                           int keep_cache, int nonseekable,
                                           int cache_readdir, int noflush) {
    fi->direct_io = direct_io ? 1 : 0;
    fi->noflush = noflush ? 1 : 0;
    fi->keep_cache = keep_cache ? 1 : 0;
    fi->nonseekable = nonseekable ? 1 : 0;
    fi->cache_readdir = cache_readdir ? 1 : 0;
}
static inline int cfuse_fi_writepage(const struct fuse_file_info *fi) { return fi->writepage; }
#endif
