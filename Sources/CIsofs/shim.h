#ifndef CISOFS_SHIM_H
#define CISOFS_SHIM_H
#include <stdint.h>
#include <sys/types.h>
#include <libburn/libburn.h>
#include <libisofs/libisofs.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// The directory `path` (components separated by '/') under `root`, made as needed.
static inline int cisofs_dir(IsoImage *image, IsoDir *root, const char *path, IsoDir **out) {
    IsoDir *dir = root;
    char *copy = strdup(path), *save = NULL;
    if (!copy) return ISO_OUT_OF_MEM;
    int rc = 1;
    for (char *part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
        IsoNode *node = NULL;
        if (iso_dir_get_node(dir, part, &node) == 1 && node && iso_node_get_type(node) == LIBISO_DIR) {
            dir = (IsoDir *)node;
            continue;
        }
        IsoDir *made = NULL;
        rc = iso_image_add_new_dir(image, dir, part, &made);
        if (rc < 0) break;
        dir = made;
    }
    free(copy);
    *out = dir;
    return rc < 0 ? rc : 1;
}

// Writes an ISO 9660 image with Rock Ridge and Joliet names (what `genisoimage -J -r`
// makes) holding `count` files `paths[i]` with contents `data[i]` of `sizes[i]` bytes, to
// the open descriptor `fd`. Returns 1, or a negative libisofs error code.
static inline int cisofs_write(int fd, const char *volume, const char *publisher, size_t count,
                               const char *const *paths, const unsigned char *const *data,
                               const size_t *sizes) {
    IsoImage *image = NULL;
    int rc = iso_image_new(volume, &image);
    if (rc < 0) return rc;
    iso_image_set_publisher_id(image, publisher);
    IsoDir *root = iso_image_get_root(image);
    for (size_t i = 0; i < count && rc >= 0; i++) {
        const char *slash = strrchr(paths[i], '/');
        IsoDir *dir = root;
        if (slash) {
            char *parent = strndup(paths[i], (size_t)(slash - paths[i]));
            if (!parent) { rc = ISO_OUT_OF_MEM; break; }
            rc = cisofs_dir(image, root, parent, &dir);
            free(parent);
            if (rc < 0) break;
        }
        unsigned char *copy = malloc(sizes[i] ? sizes[i] : 1);
        if (!copy) { rc = ISO_OUT_OF_MEM; break; }
        memcpy(copy, data[i], sizes[i]);
        IsoStream *stream = NULL;
        rc = iso_memory_stream_new(copy, sizes[i], &stream);   // takes `copy`
        if (rc < 0) { free(copy); break; }
        rc = iso_image_add_new_file(image, dir, slash ? slash + 1 : paths[i], stream, NULL);  // takes `stream`
        if (rc < 0) iso_stream_unref(stream);
    }
    IsoWriteOpts *opts = NULL;
    if (rc >= 0) rc = iso_write_opts_new(&opts, 1);   // profile 1: Rock Ridge
    if (rc >= 0) {
        iso_write_opts_set_iso_level(opts, 2);
        iso_write_opts_set_rockridge(opts, 1);
        iso_write_opts_set_joliet(opts, 1);
        iso_write_opts_set_allow_lowercase(opts, 1);
        iso_write_opts_set_no_force_dots(opts, 3);   // `user_data`, not `user_data.`
        iso_write_opts_set_allow_deep_paths(opts, 1);
        iso_write_opts_set_relaxed_vol_atts(opts, 1);   // the label is `config-2`, verbatim
        iso_write_opts_set_omit_version_numbers(opts, 1);   // `meta_data.json`, not `;1`
        struct burn_source *source = NULL;
        rc = iso_image_create_burn_source(image, opts, &source);
        if (rc >= 0) {
            // The image's size is known before it is written: read it from the writer
            // thread's ring buffer in pieces of up to 1 MiB, each one write(2). Reading
            // 2 KiB blocks made a config drive forty writes and as many thread wake-ups.
            // A read asks for exactly what is left: libisofs answers a read that runs
            // past the end with nothing.
            off_t left = source->get_size(source);
            size_t cap = left < (1 << 20) ? (size_t)(left > 0 ? left : 1) : (size_t)(1 << 20);
            unsigned char *buf = malloc(cap);
            if (!buf) rc = ISO_OUT_OF_MEM;
            while (rc >= 0 && left > 0) {
                int want = left < (off_t)cap ? (int)left : (int)cap;
                int n = source->read_xt ? source->read_xt(source, buf, want) : source->read(source, buf, want);
                if (n <= 0) { rc = ISO_WRITE_ERROR; break; }
                left -= n;
                const unsigned char *p = buf;
                ssize_t todo = n;
                while (todo > 0) {
                    ssize_t w = write(fd, p, (size_t)todo);
                    if (w <= 0) break;
                    p += w; todo -= w;
                }
                if (todo > 0) rc = ISO_WRITE_ERROR;
            }
            if (rc < 0 && source->cancel) source->cancel(source);
            free(buf);
            source->free_data(source);
            free(source);
        }
        iso_write_opts_free(opts);
    }
    iso_image_unref(image);
    return rc < 0 ? rc : 1;
}
#endif
