// Reactor component for world test:io/io (wit/io.wit), with the canonical-ABI
// exports written by hand (no wit-bindgen in Debian). Layout rules used below:
//  - string params arrive as (ptr, len) allocated with our cabi_realloc; the
//    callee owns and frees them.
//  - results that do not fit one core value are returned as a pointer to a
//    "return area": discriminant byte at offset 0, payload at offset 4 (the
//    payload's alignment), strings/lists as (ptr, len) u32 pairs.
//  - cabi_post_<export> runs after the host copied the result: it frees what
//    the result points to.
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

__attribute__((export_name("cabi_realloc")))
void *cabi_realloc(void *ptr, size_t old_size, size_t align, size_t new_size) {
    (void)old_size;
    if (new_size == 0) return (void *)align;
    void *p = realloc(ptr, new_size);  // malloc alignment (16) covers every WIT type
    if (!p) abort();
    return p;
}

// Return area shared by all exports (an instance is never re-entered).
static uint32_t ret_area[3];

static char *dup_n(const char *s, size_t n) {
    char *out = malloc(n ? n : 1);
    if (!out) abort();
    memcpy(out, s, n);
    return out;
}

// Heap copy of a NUL-terminated string, so every result string can be freed
// the same way in cabi_post_* (strerror() returns static storage).
static char *dup_c(const char *s, size_t *len) {
    *len = strlen(s);
    return dup_n(s, *len);
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

static uint32_t *ret_err(int errnum) {
    size_t len;
    char *msg = dup_c(strerror(errnum), &len);
    ret_area[0] = 1;  // err
    set_string(&ret_area[1], msg, len);
    return ret_area;
}

// Write all of buf to fd; returns bytes written before the first failure.
static size_t write_all(int fd, const char *buf, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n <= 0) break;
        done += (size_t)n;
    }
    return done;
}

__attribute__((export_name("print-stdout")))
void print_stdout(char *ptr, size_t len) {
    write_all(1, ptr, len);  // unbuffered: nothing is left behind in stdio buffers
    free(ptr);
}

__attribute__((export_name("print-stderr")))
void print_stderr(char *ptr, size_t len) {
    write_all(2, ptr, len);
    free(ptr);
}

__attribute__((export_name("flood")))
uint32_t flood(uint32_t bytes) {
    static char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    uint32_t total = 0;
    while (total < bytes) {
        size_t want = bytes - total < sizeof chunk ? bytes - total : sizeof chunk;
        size_t n = write_all(1, chunk, want);
        total += (uint32_t)n;
        if (n < want) break;  // the host refused more output
    }
    return total;
}

// option<string>: discriminant 0 = none, 1 = some(string at offset 4).
__attribute__((export_name("get-env")))
uint32_t *get_env(char *ptr, size_t len) {
    char *key = take_cstr(ptr, len);
    const char *val = getenv(key);
    free(key);
    if (!val) {
        ret_area[0] = 0;
        return ret_area;
    }
    size_t vlen;
    char *copy = dup_c(val, &vlen);
    ret_area[0] = 1;
    set_string(&ret_area[1], copy, vlen);
    return ret_area;
}

__attribute__((export_name("cabi_post_get-env")))
void post_get_env(uint32_t *ret) {
    if (ret[0] == 1) free((void *)(uintptr_t)ret[1]);
}

__attribute__((export_name("env-count")))
uint32_t env_count(void) {
    uint32_t n = 0;
    for (char **e = environ; e && *e; e++) n++;
    return n;
}

// Minimal UTF-8 check: the host traps on invalid UTF-8 in a result string,
// so binary files become an err instead.
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
        if (extra > n - i - 1) return 0;  // truncated sequence
        uint32_t cp = extra == 0 ? c : c & (0x7Fu >> (extra + 1));
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        // reject overlong forms, surrogates and values past U+10FFFF
        if (cp < min_cp[extra] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
        i += extra + 1;
    }
    return 1;
}

// result<string, string>: discriminant 0 = ok, 1 = err; string at offset 4.
__attribute__((export_name("read-file")))
uint32_t *read_file(char *ptr, size_t len) {
    char *path = take_cstr(ptr, len);
    FILE *f = fopen(path, "rb");
    free(path);
    if (!f) return ret_err(errno);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) abort();
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        cap *= 2;
        buf = realloc(buf, cap);
        if (!buf) abort();
    }
    int failed = ferror(f) ? errno : 0;
    fclose(f);
    if (failed) {
        free(buf);
        return ret_err(failed);
    }
    if (!valid_utf8((const unsigned char *)buf, n)) {
        free(buf);
        size_t mlen;
        char *msg = dup_c("file is not valid UTF-8", &mlen);
        ret_area[0] = 1;
        set_string(&ret_area[1], msg, mlen);
        return ret_area;
    }
    ret_area[0] = 0;
    set_string(&ret_area[1], buf, n);
    return ret_area;
}

__attribute__((export_name("cabi_post_read-file")))
void post_read_file(uint32_t *ret) {
    free((void *)(uintptr_t)ret[1]);  // ok and err both carry a string
}

// result<_, string>: discriminant 0 = ok (no payload), 1 = err(string at offset 4).
__attribute__((export_name("write-file")))
uint32_t *write_file(char *pptr, size_t plen, char *cptr, size_t clen) {
    char *path = take_cstr(pptr, plen);
    FILE *f = fopen(path, "wb");
    free(path);
    if (!f) {
        free(cptr);
        return ret_err(errno);
    }
    size_t wrote = fwrite(cptr, 1, clen, f);
    int err = wrote < clen ? errno : 0;
    free(cptr);
    if (fclose(f) != 0 && !err) err = errno;
    if (err) return ret_err(err);
    ret_area[0] = 0;
    return ret_area;
}

__attribute__((export_name("cabi_post_write-file")))
void post_write_file(uint32_t *ret) {
    if (ret[0] == 1) free((void *)(uintptr_t)ret[1]);
}

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
    qsort(names, n, sizeof *names, cmp_names);  // deterministic order for tests
    uint32_t *pairs = malloc(n ? n * 2 * sizeof(uint32_t) : 1);
    if (!pairs) abort();
    for (size_t i = 0; i < n; i++) set_string(&pairs[2 * i], names[i], strlen(names[i]));
    free(names);
    ret_area[0] = 0;
    ret_area[1] = (uint32_t)(uintptr_t)pairs;
    ret_area[2] = (uint32_t)n;
    return ret_area;
}

__attribute__((export_name("cabi_post_list-dir")))
void post_list_dir(uint32_t *ret) {
    if (ret[0] == 0) {
        uint32_t *pairs = (uint32_t *)(uintptr_t)ret[1];
        for (uint32_t i = 0; i < ret[2]; i++) free((void *)(uintptr_t)pairs[2 * i]);
        free(pairs);
    } else {
        free((void *)(uintptr_t)ret[1]);
    }
}
