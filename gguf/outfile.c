/* outfile.c - where an output file's bytes go, decided once, safely.
 *
 * Running as root, a plain "write a temp file, rename it over the path"
 * replaces whatever the path names: /dev/null becomes a regular file, a
 * symbolic link is swapped for a file while its target stays as it was.
 * So the path is looked at first (see gguf.h, rb_outfile_open):
 *
 *   regular file or no file  temp file beside it, renamed over it on commit
 *   symbolic link            followed: its target is what gets replaced
 *   character device, FIFO   written straight through (/dev/null, a pipe)
 *   anything else            refused, saying what it is
 */
#define _DEFAULT_SOURCE /* realpath */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t mode) {
    if (S_ISDIR(mode)) return "is a directory";
    if (S_ISBLK(mode)) return "is a block device";
    if (S_ISSOCK(mode)) return "is a socket";
    if (S_ISCHR(mode)) return "is a character device";
    if (S_ISFIFO(mode)) return "is a FIFO";
    return "is not a regular file";
}

static int straight_through(struct rb_outfile *o, const char *path, int need_seek, mode_t mode, char *err) {
    if (need_seek) {
        snprintf(err, RB_ERR_MAX, "%s; this output is written in place, so it must be a regular file",
                 kind_of(mode));
        return -1;
    }
    /* no O_CREAT, no O_TRUNC: the device or FIFO stays what it is */
    o->fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    struct stat st;
    if (o->fd < 0 || fstat(o->fd, &st) != 0) {
        snprintf(err, RB_ERR_MAX, "cannot open for writing: %s", strerror(errno));
        if (o->fd >= 0) close(o->fd);
        o->fd = -1;
        return -1;
    }
    if (!S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode)) { /* replaced since we looked */
        snprintf(err, RB_ERR_MAX, "changed while being opened");
        close(o->fd);
        o->fd = -1;
        return -1;
    }
    return 0;
}

int rb_outfile_open(struct rb_outfile *o, const char *path, int need_seek, char *err) {
    memset(o, 0, sizeof *o);
    o->fd = -1;
    o->mode = 0644;
    struct stat st;
    const char *target = path;
    char *resolved = NULL;
    if (lstat(path, &st) == 0) {
        if (S_ISLNK(st.st_mode)) {
            if (stat(path, &st) != 0) {
                snprintf(err, RB_ERR_MAX, "a symbolic link to a missing file (give the target's path)");
                return -1;
            }
            if (S_ISREG(st.st_mode)) { /* replace the target, keep the link */
                resolved = realpath(path, NULL);
                if (!resolved) {
                    snprintf(err, RB_ERR_MAX, "cannot follow the symbolic link: %s", strerror(errno));
                    return -1;
                }
                target = resolved;
            }
        }
        if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) return straight_through(o, path, need_seek, st.st_mode, err);
        if (!S_ISREG(st.st_mode)) {
            snprintf(err, RB_ERR_MAX, "%s; refusing to replace it with a file", kind_of(st.st_mode));
            free(resolved);
            return -1;
        }
        o->mode = st.st_mode & 0777;
    } else if (errno != ENOENT) {
        snprintf(err, RB_ERR_MAX, "%s", strerror(errno));
        return -1;
    }
    size_t n = strlen(target);
    o->final_path = malloc(n + 1);
    o->tmp_path = malloc(n + sizeof ".tmp.XXXXXX");
    if (!o->final_path || !o->tmp_path) {
        snprintf(err, RB_ERR_MAX, "out of memory");
        free(resolved);
        rb_outfile_abort(o);
        return -1;
    }
    memcpy(o->final_path, target, n + 1);
    memcpy(o->tmp_path, target, n);
    memcpy(o->tmp_path + n, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    free(resolved);
    o->fd = mkstemp(o->tmp_path);
    if (o->fd < 0) {
        snprintf(err, RB_ERR_MAX, "cannot create %.160s: %s", o->tmp_path, strerror(errno));
        free(o->tmp_path); /* nothing to remove */
        o->tmp_path = NULL;
        rb_outfile_abort(o);
        return -1;
    }
    return 0;
}

int rb_outfile_commit(struct rb_outfile *o, char *err) {
    int rc = 0;
    if (o->tmp_path) {
        if (fchmod(o->fd, o->mode) != 0) { /* mkstemp makes 0600 */
            snprintf(err, RB_ERR_MAX, "chmod failed: %s", strerror(errno));
            rc = -1;
        } else if (fsync(o->fd) != 0) {
            snprintf(err, RB_ERR_MAX, "fsync failed: %s", strerror(errno));
            rc = -1;
        }
    }
    if (close(o->fd) != 0 && rc == 0) {
        snprintf(err, RB_ERR_MAX, "close failed: %s", strerror(errno));
        rc = -1;
    }
    o->fd = -1;
    if (rc == 0 && o->tmp_path && rename(o->tmp_path, o->final_path) != 0) {
        snprintf(err, RB_ERR_MAX, "cannot rename to %.160s: %s", o->final_path, strerror(errno));
        rc = -1;
    }
    if (rc == 0) { /* renamed: nothing left to remove */
        free(o->tmp_path);
        o->tmp_path = NULL;
    }
    rb_outfile_abort(o);
    return rc;
}

void rb_outfile_abort(struct rb_outfile *o) {
    if (o->fd >= 0) close(o->fd);
    if (o->tmp_path) unlink(o->tmp_path);
    free(o->tmp_path);
    free(o->final_path);
    o->fd = -1;
    o->tmp_path = o->final_path = NULL;
}
