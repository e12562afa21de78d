// Exports of world example:wordcount/wordcount (wit/wordcount.wit), written
// against the Component Model's canonical ABI by hand (no binding generator
// is needed for a handful of functions):
//  - a `string` parameter arrives as (pointer, length), allocated in our
//    memory through `cabi_realloc`; the callee owns it and frees it.
//  - a result too big for one core value (here a record of three u64) is
//    written to a return area, and the export returns a pointer to it.
//    `result<counts, string>` is a discriminant byte at offset 0 and the
//    payload at offset 8 (the alignment of u64): the record, or the error
//    string as (pointer, length).
//  - `cabi_post_<export>` runs after the host has read the result: it frees
//    what the result points to.
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((export_name("cabi_realloc")))
void *cabi_realloc(void *ptr, size_t old_size, size_t align, size_t new_size) {
    (void)old_size;
    if (new_size == 0) return (void *)align;
    void *p = realloc(ptr, new_size);  // malloc's alignment (16) covers every WIT type
    if (!p) abort();
    return p;
}

typedef struct {
    uint64_t lines, words, bytes;
} counts_t;

// Return area: 8 bytes for the discriminant (padded), then the payload.
static uint64_t ret_area[4];

typedef struct {
    counts_t counts;
    int in_word;
} counter_t;

static void count(counter_t *c, const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') c->counts.lines++;
        if (isspace(s[i])) {
            c->in_word = 0;
        } else if (!c->in_word) {
            c->in_word = 1;
            c->counts.words++;
        }
    }
    c->counts.bytes += n;
}

__attribute__((export_name("count-text")))
counts_t *count_text(char *ptr, size_t len) {
    counter_t c = {0};
    count(&c, (const unsigned char *)ptr, len);
    free(ptr);
    memcpy(ret_area, &c.counts, sizeof c.counts);
    return (counts_t *)ret_area;
}

static uint8_t *ret_err(int errnum) {
    const char *msg = strerror(errnum);
    size_t len = strlen(msg);
    char *copy = malloc(len ? len : 1);
    if (!copy) abort();
    memcpy(copy, msg, len);
    uint8_t *ret = (uint8_t *)ret_area;
    ret[0] = 1;  // err
    uint32_t *payload = (uint32_t *)(ret + 8);
    payload[0] = (uint32_t)(uintptr_t)copy;
    payload[1] = (uint32_t)len;
    return ret;
}

__attribute__((export_name("count-file")))
uint8_t *count_file(char *ptr, size_t len) {
    char *path = malloc(len + 1);
    if (!path) abort();
    memcpy(path, ptr, len);
    path[len] = 0;
    free(ptr);
    FILE *f = fopen(path, "rb");
    free(path);
    if (!f) return ret_err(errno);
    counter_t c = {0};
    unsigned char buf[16384];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) count(&c, buf, got);
    int failed = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (failed) return ret_err(failed);
    uint8_t *ret = (uint8_t *)ret_area;
    ret[0] = 0;  // ok
    memcpy(ret + 8, &c.counts, sizeof c.counts);
    return ret;
}

__attribute__((export_name("cabi_post_count-file")))
void post_count_file(uint8_t *ret) {
    if (ret[0] == 1) free((void *)(uintptr_t)((uint32_t *)(ret + 8))[0]);
}
