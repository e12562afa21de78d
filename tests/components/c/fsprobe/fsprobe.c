// Reactor component for world test:fsprobe/fsprobe (wit/fsprobe.wit): one
// export per filesystem path primitive, so the storage-gate tests can drive
// each `wasi:filesystem` route from inside the sandbox. The canonical-ABI
// exports are written by hand, as in ../io/io.c:
//  - string params arrive as (ptr, len) allocated with our cabi_realloc; the
//    callee owns and frees them.
//  - results are returned as a pointer to a return area: discriminant byte at
//    offset 0, payload at the payload's alignment (4 for strings and lists,
//    8 for u64), strings/lists as (ptr, len) u32 pairs.
//  - cabi_post_<export> frees what the result points to.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

__attribute__((export_name("cabi_realloc")))
void *cabi_realloc(void *ptr, size_t old_size, size_t align, size_t new_size) {
    (void)old_size;
    if (new_size == 0) return (void *)align;
    void *p = realloc(ptr, new_size);  // malloc alignment (16) covers every WIT type
    if (!p) abort();
    return p;
}

// Return area shared by all exports (an instance is never re-entered); 8-byte
// aligned for result<u64, string>.
static uint64_t ret_words[2];
#define RET ((uint32_t *)ret_words)

static char *dup_n(const char *s, size_t n) {
    char *out = malloc(n ? n : 1);
    if (!out) abort();
    memcpy(out, s, n);
    return out;
}

// (ptr, len) string argument -> NUL-terminated heap string; frees the argument.
static char *take_cstr(char *ptr, size_t len) {
    char *s = malloc(len + 1);
    if (!s) abort();
    memcpy(s, ptr, len);
    s[len] = 0;
    free(ptr);
    return s;
}

static void set_string(uint32_t *slot, char *s, size_t len) {
    slot[0] = (uint32_t)(uintptr_t)s;
    slot[1] = (uint32_t)len;
}

// err(strerror) with the payload at word `at` (1 for 4-aligned, 2 for u64 results).
static uint32_t *ret_err_at(int errnum, int at) {
    const char *msg = strerror(errnum);
    size_t len = strlen(msg);
    ((uint8_t *)RET)[0] = 1;
    set_string(&RET[at], dup_n(msg, len), len);
    return RET;
}

static uint32_t *ret_err(int errnum) { return ret_err_at(errnum, 1); }

static uint32_t *ret_ok_unit(void) {
    ((uint8_t *)RET)[0] = 0;
    return RET;
}

static uint32_t *ret_ok_string(char *s, size_t len) {
    ((uint8_t *)RET)[0] = 0;
    set_string(&RET[1], s, len);
    return RET;
}

static uint32_t *ret_ok_u64(uint64_t v) {
    ((uint8_t *)RET)[0] = 0;
    ret_words[1] = v;
    return RET;
}

// result<_, string>: only err carries a string.
static void post_unit(uint32_t *ret) {
    if (((uint8_t *)ret)[0] == 1) free((void *)(uintptr_t)ret[1]);
}

// result<string, string>: both cases carry a string.
static void post_string(uint32_t *ret) { free((void *)(uintptr_t)ret[1]); }

static int valid_utf8(const unsigned char *s, size_t n) {
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t extra;
        if (c < 0x80) extra = 0;
        else if ((c & 0xE0) == 0xC0) extra = 1;
        else if ((c & 0xF0) == 0xE0) extra = 2;
        else if ((c & 0xF8) == 0xF0) extra = 3;
        else return 0;
        if (extra > n - i - 1) return 0;
        uint32_t cp = extra == 0 ? c : c & (0x7Fu >> (extra + 1));
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min_cp[extra] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
        i += extra + 1;
    }
    return 1;
}

static uint32_t *ret_invalid_utf8(void) {
    const char *msg = "not valid UTF-8";
    size_t len = strlen(msg);
    ((uint8_t *)RET)[0] = 1;
    set_string(&RET[1], dup_n(msg, len), len);
    return RET;
}

__attribute__((export_name("read-file")))
uint32_t *read_file(char *ptr, size_t len) {
    char *path = take_cstr(ptr, len);
    int fd = open(path, O_RDONLY);
    free(path);
    if (fd < 0) return ret_err(errno);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) abort();
    for (;;) {
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0) {
            int e = errno;
            close(fd);
            free(buf);
            return ret_err(e);
        }
        if (got == 0) break;
        n += (size_t)got;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf) abort();
        }
    }
    close(fd);
    if (!valid_utf8((const unsigned char *)buf, n)) {
        free(buf);
        return ret_invalid_utf8();
    }
    return ret_ok_string(buf, n);
}

__attribute__((export_name("cabi_post_read-file")))
void post_read_file(uint32_t *ret) { post_string(ret); }

static uint32_t *write_with(char *pptr, size_t plen, char *cptr, size_t clen, int flags) {
    char *path = take_cstr(pptr, plen);
    int fd = open(path, flags, 0666);
    free(path);
    if (fd < 0) {
        free(cptr);
        return ret_err(errno);
    }
    size_t done = 0;
    int err = 0;
    while (done < clen) {
        ssize_t n = write(fd, cptr + done, clen - done);
        if (n <= 0) {
            err = n < 0 ? errno : EIO;
            break;
        }
        done += (size_t)n;
    }
    free(cptr);
    if (close(fd) != 0 && !err) err = errno;
    return err ? ret_err(err) : ret_ok_unit();
}

__attribute__((export_name("write-file")))
uint32_t *write_file(char *pptr, size_t plen, char *cptr, size_t clen) {
    return write_with(pptr, plen, cptr, clen, O_WRONLY | O_CREAT | O_TRUNC);
}

__attribute__((export_name("cabi_post_write-file")))
void post_write_file(uint32_t *ret) { post_unit(ret); }

__attribute__((export_name("append-file")))
uint32_t *append_file(char *pptr, size_t plen, char *cptr, size_t clen) {
    return write_with(pptr, plen, cptr, clen, O_WRONLY | O_CREAT | O_APPEND);
}

__attribute__((export_name("cabi_post_append-file")))
void post_append_file(uint32_t *ret) { post_unit(ret); }

__attribute__((export_name("overwrite-file")))
uint32_t *overwrite_file(char *pptr, size_t plen, char *cptr, size_t clen) {
    return write_with(pptr, plen, cptr, clen, O_WRONLY);
}

__attribute__((export_name("cabi_post_overwrite-file")))
void post_overwrite_file(uint32_t *ret) { post_unit(ret); }

__attribute__((export_name("truncate-file")))
uint32_t *truncate_file(char *ptr, size_t len, uint64_t size) {
    char *path = take_cstr(ptr, len);
    int rc = truncate(path, (off_t)size);
    free(path);
    return rc ? ret_err(errno) : ret_ok_unit();
}

__attribute__((export_name("cabi_post_truncate-file")))
void post_truncate_file(uint32_t *ret) { post_unit(ret); }

__attribute__((export_name("touch")))
uint32_t *touch(char *ptr, size_t len) {
    char *path = take_cstr(ptr, len);
    int rc = utimensat(AT_FDCWD, path, NULL, 0);
    free(path);
    return rc ? ret_err(errno) : ret_ok_unit();
}

__attribute__((export_name("cabi_post_touch")))
void post_touch(uint32_t *ret) { post_unit(ret); }

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// result<list<string>, string>: ok payload at offset 4 is a list (ptr, len)
// pointing to `len` (ptr, len) string pairs.
__attribute__((export_name("list-dir")))
uint32_t *list_dir(char *ptr, size_t len) {
    char *path = take_cstr(ptr, len);
    DIR *d = opendir(path);
    free(path);
    if (!d) return ret_err(errno);
    size_t cap = 16, n = 0;
    char **names = malloc(cap * sizeof *names);
    if (!names) abort();
    struct dirent *ent;
    errno = 0;
    while ((ent = readdir(d)) != NULL) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
        if (n == cap) {
            cap *= 2;
            names = realloc(names, cap * sizeof *names);
            if (!names) abort();
        }
        names[n++] = strdup(ent->d_name);
    }
    int err = errno;
    closedir(d);
    if (err) {
        for (size_t i = 0; i < n; i++) free(names[i]);
        free(names);
        return ret_err(err);
    }
    qsort(names, n, sizeof *names, cmp_names);
    uint32_t *pairs = malloc(n ? n * 2 * sizeof(uint32_t) : 1);
    if (!pairs) abort();
    for (size_t i = 0; i < n; i++) set_string(&pairs[2 * i], names[i], strlen(names[i]));
    free(names);
    ((uint8_t *)RET)[0] = 0;
    RET[1] = (uint32_t)(uintptr_t)pairs;
    RET[2] = (uint32_t)n;
    return RET;
}

__attribute__((export_name("cabi_post_list-dir")))
void post_list_dir(uint32_t *ret) {
    if (((uint8_t *)ret)[0] == 0) {
        uint32_t *pairs = (uint32_t *)(uintptr_t)ret[1];
        for (uint32_t i = 0; i < ret[2]; i++) free((void *)(uintptr_t)pairs[2 * i]);
        free(pairs);
    } else {
        free((void *)(uintptr_t)ret[1]);
    }
}

// result<u64, string>: the payload is 8-aligned, so it starts at offset 8.
static uint32_t *stat_with(char *ptr, size_t len, int follow) {
    char *path = take_cstr(ptr, len);
    struct stat st;
    int rc = follow ? stat(path, &st) : lstat(path, &st);
    free(path);
    return rc ? ret_err_at(errno, 2) : ret_ok_u64((uint64_t)st.st_size);
}

static void post_u64(uint32_t *ret) {
    if (((uint8_t *)ret)[0] == 1) free((void *)(uintptr_t)ret[2]);
}

__attribute__((export_name("stat")))
uint32_t *stat_path(char *ptr, size_t len) { return stat_with(ptr, len, 1); }

__attribute__((export_name("cabi_post_stat")))
void post_stat(uint32_t *ret) { post_u64(ret); }

__attribute__((export_name("lstat")))
uint32_t *lstat_path(char *ptr, size_t len) { return stat_with(ptr, len, 0); }

__attribute__((export_name("cabi_post_lstat")))
void post_lstat(uint32_t *ret) { post_u64(ret); }

__attribute__((export_name("mkdir")))
uint32_t *make_dir(char *ptr, size_t len) {
    char *path = take_cstr(ptr, len);
    int rc = mkdir(path, 0777);
    free(path);
    return rc ? ret_err(errno) : ret_ok_unit();
}

__attribute__((export_name("cabi_post_mkdir")))
void post_mkdir(uint32_t *ret) { post_unit(ret); }

__attribute__((export_name("remove-file")))
uint32_t *remove_file(char *ptr, size_t len) {
    char *path = take_cstr(ptr, len);
    int rc = unlink(path);
    free(path);
    return rc ? ret_err(errno) : ret_ok_unit();
}

__attribute__((export_name("cabi_post_remove-file")))
void post_remove_file(uint32_t *ret) { post_unit(ret); }

__attribute__((export_name("remove-dir")))
uint32_t *remove_dir(char *ptr, size_t len) {
    char *path = take_cstr(ptr, len);
    int rc = rmdir(path);
    free(path);
    return rc ? ret_err(errno) : ret_ok_unit();
}

__attribute__((export_name("cabi_post_remove-dir")))
void post_remove_dir(uint32_t *ret) { post_unit(ret); }

__attribute__((export_name("rename")))
uint32_t *rename_path(char *fptr, size_t flen, char *tptr, size_t tlen) {
    char *from = take_cstr(fptr, flen), *to = take_cstr(tptr, tlen);
    int rc = rename(from, to);
    free(from);
    free(to);
    return rc ? ret_err(errno) : ret_ok_unit();
}

__attribute__((export_name("cabi_post_rename")))
void post_rename(uint32_t *ret) { post_unit(ret); }

__attribute__((export_name("symlink")))
uint32_t *make_symlink(char *tptr, size_t tlen, char *lptr, size_t llen) {
    char *target = take_cstr(tptr, tlen), *link = take_cstr(lptr, llen);
    int rc = symlink(target, link);
    free(target);
    free(link);
    return rc ? ret_err(errno) : ret_ok_unit();
}

__attribute__((export_name("cabi_post_symlink")))
void post_symlink(uint32_t *ret) { post_unit(ret); }

__attribute__((export_name("hard-link")))
uint32_t *hard_link(char *fptr, size_t flen, char *tptr, size_t tlen) {
    char *from = take_cstr(fptr, flen), *to = take_cstr(tptr, tlen);
    int rc = link(from, to);
    free(from);
    free(to);
    return rc ? ret_err(errno) : ret_ok_unit();
}

__attribute__((export_name("cabi_post_hard-link")))
void post_hard_link(uint32_t *ret) { post_unit(ret); }

__attribute__((export_name("readlink")))
uint32_t *read_link(char *ptr, size_t len) {
    char *path = take_cstr(ptr, len);
    char buf[4096];
    ssize_t n = readlink(path, buf, sizeof buf);
    free(path);
    if (n < 0) return ret_err(errno);
    if (!valid_utf8((const unsigned char *)buf, (size_t)n)) return ret_invalid_utf8();
    return ret_ok_string(dup_n(buf, (size_t)n), (size_t)n);
}

__attribute__((export_name("cabi_post_readlink")))
void post_readlink(uint32_t *ret) { post_string(ret); }
