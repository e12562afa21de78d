// The functions of the world in wit/world.wit, each an MCP tool. Their C
// signatures are in target/bindings/{{snake}}.h, which build.sh generates
// with `wit-bindgen c`: a WIT string is a {{snake}}_string_t (UTF-8 bytes
// and a length, no NUL at the end); the arguments are yours to free; a result
// you allocate is freed for you once the host has read it.
#include <stdio.h>
#include <stdlib.h>

#include "{{snake}}.h"

// Says hello to `name`.
void exports_{{snake}}_greet({{snake}}_string_t *name, {{snake}}_string_t *ret) {
    int len = snprintf(NULL, 0, "Hello, %.*s!", (int)name->len, (const char *)name->ptr);
    char *text = malloc((size_t)len + 1);
    if (!text) abort();  // a trap: the call fails, the next one starts afresh
    snprintf(text, (size_t)len + 1, "Hello, %.*s!", (int)name->len, (const char *)name->ptr);
    ret->ptr = (uint8_t *)text;
    ret->len = (size_t)len;
    {{snake}}_string_free(name);
}
