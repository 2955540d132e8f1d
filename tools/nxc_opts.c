/* nxc: option iteration and number/list parsing (messages on error). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nxc.h"

void opt_init(opt_iter_t *it, int argc, char **argv)
{
    it->argc = argc;
    it->argv = argv;
    it->i = 1;
    it->only_positional = false;
}

static const opt_spec_t *find_long(const opt_spec_t *specs, const char *name,
                                   size_t len)
{
    for (; specs->name; specs++)
        if (strlen(specs->name) == len && strncmp(specs->name, name, len) == 0)
            return specs;
    return NULL;
}

static const opt_spec_t *find_short(const opt_spec_t *specs, char c)
{
    for (; specs->name; specs++)
        if (specs->short_name == c)
            return specs;
    return NULL;
}

/* The option's value: after '=' or the next word. */
static int take_value(opt_iter_t *it, const opt_spec_t *s, const char *eq,
                      const char *word, const char **arg)
{
    if (!s->has_arg) {
        if (eq) {
            usage_error("option --%s takes no value", s->name);
            return OPT_ERROR;
        }
        return s->id;
    }
    if (eq) {
        *arg = eq + 1;
        return s->id;
    }
    if (it->i >= it->argc) {
        usage_error("option %s needs a value", word);
        return OPT_ERROR;
    }
    *arg = it->argv[it->i++];
    return s->id;
}

int opt_next(opt_iter_t *it, const opt_spec_t *specs, const char **arg)
{
    if (it->i >= it->argc)
        return OPT_END;
    const char *word = it->argv[it->i++];
    if (it->only_positional || word[0] != '-' || word[1] == '\0') {
        *arg = word;
        return OPT_POSITIONAL;
    }
    if (strcmp(word, "--") == 0) {
        it->only_positional = true;
        return opt_next(it, specs, arg);
    }
    const opt_spec_t *s = NULL;
    const char *eq = NULL;
    if (word[1] == '-') {
        eq = strchr(word + 2, '=');
        size_t len = eq ? (size_t)(eq - word - 2) : strlen(word + 2);
        s = find_long(specs, word + 2, len);
    } else if (word[2] == '\0') {
        s = find_short(specs, word[1]);
    }
    if (!s) {
        if (eq)
            usage_error("unknown option '%.*s'", (int)(eq - word), word);
        else
            usage_error("unknown option '%s'", word);
        return OPT_ERROR;
    }
    return take_value(it, s, eq, word, arg);
}

/* Multiplier of a size suffix: K, M, G, optionally followed by "i", "iB" or
 * "B"; a bare "B" or nothing means bytes. 0 if not a suffix. */
static uint64_t suffix_scale(const char *s)
{
    uint64_t scale = 1;
    switch (toupper((unsigned char)*s)) {
    case 'K': scale = KIB; s++; break;
    case 'M': scale = MIB; s++; break;
    case 'G': scale = GIB; s++; break;
    default: break;
    }
    if (scale > 1 && (*s == 'i' || *s == 'I'))
        s++;
    if (*s == 'b' || *s == 'B')
        s++;
    return *s == '\0' ? scale : 0;
}

static int parse_u64(const char *text, char **end, uint64_t *out)
{
    if (!isdigit((unsigned char)text[0]))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(text, end, 10);
    if (errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

int parse_size(const char *opt, const char *text, uint64_t max, uint64_t *out)
{
    char *end;
    uint64_t v, scale;
    if (parse_u64(text, &end, &v) != 0 || (scale = suffix_scale(end)) == 0) {
        usage_error("%s: '%s' is not a size (a number with an optional "
                    "K, M or G suffix)", opt, text);
        return -1;
    }
    if (v > max / scale) {
        char h[32];
        usage_error("%s: '%s' is larger than %s", opt, text,
                    human_bytes(max, h, sizeof h));
        return -1;
    }
    *out = v * scale;
    return 0;
}

int parse_count(const char *opt, const char *text, uint64_t min, uint64_t max,
                uint64_t *out)
{
    char *end;
    uint64_t v;
    if (parse_u64(text, &end, &v) != 0 || *end != '\0') {
        usage_error("%s: '%s' is not a whole number", opt, text);
        return -1;
    }
    if (v < min || v > max) {
        usage_error("%s: %s is out of range (%llu to %llu)", opt, text,
                    (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

int parse_seconds(const char *opt, const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !isfinite(v) || v <= 0 ||
        v > 1e6) {
        usage_error("%s: '%s' is not a positive number of seconds", opt, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_item(const char *opt, const char *item, bool sizes,
                      uint64_t min, uint64_t max, uint64_t *out)
{
    if (sizes) {
        if (parse_size(opt, item, max, out) != 0)
            return -1;
        if (*out < min) {
            usage_error("%s: '%s' is too small (at least %llu)", opt, item,
                        (unsigned long long)min);
            return -1;
        }
        return 0;
    }
    return parse_count(opt, item, min, max, out);
}

int parse_list(const char *opt, const char *text, bool sizes, uint64_t min,
               uint64_t max, uint64_t *out, size_t cap, size_t *n)
{
    char item[64];
    size_t count = 0;
    const char *p = text;
    for (;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof item) {
            usage_error("%s: bad list '%s' (comma-separated values)", opt, text);
            return -1;
        }
        if (count == cap) {
            usage_error("%s: too many values (at most %zu)", opt, cap);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (parse_item(opt, item, sizes, min, max, &out[count]) != 0)
            return -1;
        count++;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    *n = count;
    return 0;
}
