// Exports of world wassette-tests:mcp-c (wit/world.wit): declared tools
// (wassette:mcp/tools) that call the host (wassette:mcp/host), in C with the
// bindings `wit-bindgen c` 0.63.0 generates. They are checked in, so that
// build.py's C recipe (one translation unit through clang, then
// `wasm-tools component embed` + `component new`) builds this unchanged;
// after editing the WIT, regenerate them in this directory with
//
//     $WASSETTE_DEV_CACHE/wit-bindgen-cli/bin/wit-bindgen c wit --world mcp-c \
//         --no-object-file --out-dir bindings
//
// (tests/test_mcp_components.py checks them with `--check`).
//
// Memory, as bindings/mcp_c.h has it:
//  - exports: the arguments (`name`, `arguments_json`) are ours to free; every
//    string and list in a result must be heap memory (mcp_c_string_dup*,
//    malloc), because the generated cabi_post_* frees it once the host has
//    copied the result. Never mcp_c_string_set() a literal into a result.
//  - imports: the arguments stay ours (borrowed by the call; literals are fine
//    through mcp_c_string_set); what an import returns (an answer, an error
//    string) is allocated in our memory and ours to free.
//  - option<T> as an import parameter is a pointer, NULL for none; inside a
//    record it is {is_some, val}. A variant is {tag, val.<case>}, with
//    WASSETTE_MCP_TYPES_CONTENT_* tags. result<T, E> from an import is a bool
//    (true: ok) with `ret` and `err` out-parameters.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bindings/mcp_c.h"

// The generated bindings.c, compiled in this unit (the recipe compiles one file).
#include "bindings/mcp_c.c"

// bindings/mcp_c.c references this symbol to link in the component-type
// object; with --no-object-file there is none, and `wasm-tools component
// embed` (in the recipe) supplies the world's types instead.
void __component_type_object_force_link_mcp_c(void) {}

#define NO_ARGS "{\"type\":\"object\",\"properties\":{},\"required\":[]}"
#define ONE_STRING(key) \
    "{\"type\":\"object\",\"properties\":{\"" key "\":{\"type\":\"string\"}},\"required\":[\"" key "\"]}"

static void *alloc(size_t size) {
    void *p = malloc(size ? size : 1);
    if (!p) abort();  // a trap: the call fails, the next one starts afresh
    return p;
}

// ------------------------------------------------------------ list-tools

static void tool(exports_wassette_mcp_tools_tool_t *t, const char *name, const char *description,
                 const char *input_schema, const char *output_schema) {
    mcp_c_string_dup(&t->name, name);
    t->title.is_some = false;
    mcp_c_string_dup(&t->description, description);
    mcp_c_string_dup(&t->input_schema_json, input_schema);
    t->output_schema_json.is_some = output_schema != NULL;
    if (output_schema) mcp_c_string_dup(&t->output_schema_json.val, output_schema);
}

void exports_wassette_mcp_tools_list_tools(exports_wassette_mcp_tools_list_tool_t *ret) {
    ret->len = 4;
    ret->ptr = alloc(ret->len * sizeof *ret->ptr);
    tool(&ret->ptr[0], "c_progress", "Reports progress 1 of 2, then 2 of 2", NO_ARGS, NULL);
    tool(&ret->ptr[1], "c_log", "Logs a warning", NO_ARGS, NULL);
    tool(&ret->ptr[2], "c_ask", "Asks the user for a colour", ONE_STRING("question"), NULL);
    tool(&ret->ptr[3], "c_echo", "Answers `text`, and its length in Unicode code points", ONE_STRING("text"),
         "{\"type\":\"object\",\"properties\":{\"length\":{\"type\":\"integer\"}},\"required\":[\"length\"]}");
}

// ------------------------------------------------------------ arguments

// Fixture shortcut, not a JSON parser: the arguments are an object the host
// has checked against the input schema, so this walks its top level, skipping
// nested values and other strings whole, and decodes the string value of
// member `key` (escapes included, \uXXXX to UTF-8). Returns a NUL-terminated
// heap copy (its length in *len), or NULL when there is no such member.
static const char *skip_string(const char *p, const char *end) {  // p after the opening quote
    while (p < end && *p != '"') p += (*p == '\\') ? 2 : 1;
    return p < end ? p + 1 : end;
}

static unsigned hex4(const char *p) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

static size_t put_utf8(char *out, unsigned cp) {
    if (cp < 0x80) return out[0] = (char)cp, 1;
    if (cp < 0x800) return out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12), out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        return out[2] = (char)(0x80 | (cp & 0x3F)), 3;
    }
    out[0] = (char)(0xF0 | cp >> 18), out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    return out[3] = (char)(0x80 | (cp & 0x3F)), 4;
}

static char *decode_string(const char *p, const char *end, size_t *len) {  // p after the opening quote
    char *out = alloc((size_t)(end - p) + 1), *o = out;  // decoding never grows the text
    while (p < end && *p != '"') {
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        char e = p[1];
        p += 2;
        switch (e) {
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case 'u': {
                unsigned cp = hex4(p);
                p += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && p[0] == '\\' && p[1] == 'u') {  // a surrogate pair
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(p + 2) - 0xDC00);
                    p += 6;
                }
                o += put_utf8(o, cp);
                break;
            }
            default: *o++ = e;  // \" \\ \/
        }
    }
    *len = (size_t)(o - out);
    *o = 0;
    return out;
}

static char *string_arg(const mcp_c_string_t *json, const char *key, size_t *len) {
    const char *p = (const char *)json->ptr, *end = p + json->len;
    size_t key_len = strlen(key);
    int depth = 0;
    while (p < end) {
        char c = *p++;
        if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') depth--;
        else if (c == '"') {
            const char *start = p;
            p = skip_string(p, end);
            const char *after = p;
            while (after < end && (*after == ' ' || *after == '\n' || *after == '\r' || *after == '\t')) after++;
            bool is_key = depth == 1 && after < end && *after == ':';
            if (is_key && (size_t)(p - 1 - start) == key_len && memcmp(start, key, key_len) == 0) {
                for (after++; after < end && *after != '"'; after++) {
                    if (*after != ' ' && *after != '\n' && *after != '\r' && *after != '\t') return NULL;
                }
                return after < end ? decode_string(after + 1, end, len) : NULL;
            }
        }
    }
    return NULL;
}

// ------------------------------------------------------------ results

// A result of one text block (a heap copy of text[0..len]).
static void text_result(exports_wassette_mcp_tools_tool_result_t *ret, const char *text, size_t len,
                        bool is_error) {
    ret->content.len = 1;
    ret->content.ptr = alloc(sizeof *ret->content.ptr);
    ret->content.ptr[0].tag = WASSETTE_MCP_TYPES_CONTENT_TEXT;
    mcp_c_string_dup_n(&ret->content.ptr[0].val.text, text, len);
    ret->structured_json.is_some = false;
    ret->is_error = is_error;
}

static bool named(const mcp_c_string_t *name, const char *expected) {
    return name->len == strlen(expected) && memcmp(name->ptr, expected, name->len) == 0;
}

// ------------------------------------------------------------ the tools

static void c_progress(exports_wassette_mcp_tools_tool_result_t *ret) {
    double total = 2;
    mcp_c_string_t half;
    mcp_c_string_set(&half, "half");  // borrowed by the import: a literal is fine
    wassette_mcp_host_progress(1, &total, &half);
    wassette_mcp_host_progress(2, &total, NULL);  // NULL: option none
    text_result(ret, "done", 4, false);
}

static void c_log(exports_wassette_mcp_tools_tool_result_t *ret) {
    mcp_c_string_t logger, data;
    mcp_c_string_set(&logger, "c");
    mcp_c_string_set(&data, "{\"lang\":\"c\"}");
    wassette_mcp_host_log(WASSETTE_MCP_HOST_LEVEL_WARNING, &logger, &data);
    text_result(ret, "logged", 6, false);
}

static void c_ask(const mcp_c_string_t *args, exports_wassette_mcp_tools_tool_result_t *ret) {
    size_t len;
    char *question = string_arg(args, "question", &len);
    if (!question) {
        text_result(ret, "no string argument `question`", 29, true);
        return;
    }
    mcp_c_string_t message = {(uint8_t *)question, len}, schema;
    mcp_c_string_set(&schema, ONE_STRING("colour"));
    wassette_mcp_host_answer_t answer;
    mcp_c_string_t err;
    bool ok = wassette_mcp_host_elicit(&message, &schema, &answer, &err);
    free(question);
    if (!ok) {  // the host's reason, e.g. the client cannot be asked
        text_result(ret, (const char *)err.ptr, err.len, true);
        mcp_c_string_free(&err);  // returned by the import: ours to free
        return;
    }
    static const char *const actions[] = {"accept", "decline", "cancel"};
    const char *content = answer.content_json.is_some ? (const char *)answer.content_json.val.ptr : "none";
    int content_len = answer.content_json.is_some ? (int)answer.content_json.val.len : 4;
    int n = snprintf(NULL, 0, "%s %.*s", actions[answer.action], content_len, content);
    char *out = alloc((size_t)n + 1);
    snprintf(out, (size_t)n + 1, "%s %.*s", actions[answer.action], content_len, content);
    text_result(ret, out, (size_t)n, false);
    free(out);
    wassette_mcp_host_answer_free(&answer);  // returned by the import: ours to free
}

static void c_echo(const mcp_c_string_t *args, exports_wassette_mcp_tools_tool_result_t *ret) {
    size_t len;
    char *text = string_arg(args, "text", &len);
    if (!text) {
        text_result(ret, "no string argument `text`", 25, true);
        return;
    }
    size_t code_points = 0;
    for (size_t i = 0; i < len; i++) code_points += ((unsigned char)text[i] & 0xC0) != 0x80;
    text_result(ret, text, len, false);
    free(text);
    char structured[48];
    int n = snprintf(structured, sizeof structured, "{\"length\":%zu}", code_points);
    ret->structured_json.is_some = true;
    mcp_c_string_dup_n(&ret->structured_json.val, structured, (size_t)n);
}

void exports_wassette_mcp_tools_call_tool(mcp_c_string_t *name, mcp_c_string_t *arguments_json,
                                          exports_wassette_mcp_tools_tool_result_t *ret) {
    if (named(name, "c_progress")) c_progress(ret);
    else if (named(name, "c_log")) c_log(ret);
    else if (named(name, "c_ask")) c_ask(arguments_json, ret);
    else if (named(name, "c_echo")) c_echo(arguments_json, ret);
    else {
        int n = snprintf(NULL, 0, "no tool %.*s", (int)name->len, (const char *)name->ptr);
        char *out = alloc((size_t)n + 1);
        snprintf(out, (size_t)n + 1, "no tool %.*s", (int)name->len, (const char *)name->ptr);
        text_result(ret, out, (size_t)n, true);
        free(out);
    }
    // The arguments are the callee's to free.
    mcp_c_string_free(name);
    mcp_c_string_free(arguments_json);
}
