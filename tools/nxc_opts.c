/* nxc: options (getopt_long with nxc's messages) and number/list parsing. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nxc.h"

/* getopt_long() is told to return words in order (leading '-') and to
 * report a missing value apart from an unknown option (':' next); its own
 * messages are off so that every mistake gets one "nxc: " line. */
static bool rest_positional; /* getopt_long() has ended ("--" or the last word) */

void opt_init(void)
{
    optind = 0;  /* glibc: a full reset, as for a new argv */
    opterr = 0;
    rest_positional = false;
}

static void short_letters(const struct option *opts, char *out, size_t size)
{
    size_t n = 0;
    out[n++] = '-';
    out[n++] = ':';
    for (; opts->name && n + 1 < size; opts++)
        if (opts->val > 0 && opts->val < OPT_LONG && !opts->flag)
            out[n++] = (char)opts->val;
    out[n] = '\0';
}

static size_t prefix_matches(const struct option *opts, const char *word)
{
    size_t len = strcspn(word + 2, "="), n = 0;
    for (; opts->name; opts++)
        n += strncmp(opts->name, word + 2, len) == 0;
    return n;
}

/* The one-line message for getopt_long()'s '?' or ':'. */
static int option_error(int c, char **argv, const struct option *opts)
{
    const char *word = argv[optind - 1];
    bool is_long = strncmp(word, "--", 2) == 0;
    if (c == ':')
        usage_error("option %s needs a value", word);
    else if (is_long && optopt != 0)
        usage_error("option --%.*s takes no value", (int)strcspn(word + 2, "="),
                    word + 2);
    else if (is_long && prefix_matches(opts, word) > 1)
        usage_error("option '%.*s' is ambiguous", (int)strcspn(word, "="), word);
    else if (is_long)
        usage_error("unknown option '%.*s'", (int)strcspn(word, "="), word);
    else
        usage_error("unknown option '-%c'", optopt);
    return OPT_ERROR;
}

int opt_next(int argc, char **argv, const struct option *opts, const char **arg)
{
    char shorts[32];
    if (!rest_positional) {
        short_letters(opts, shorts, sizeof shorts);
        int c = getopt_long(argc, argv, shorts, opts, NULL);
        if (c == '?' || c == ':')
            return option_error(c, argv, opts);
        if (c != -1) {
            *arg = optarg;
            return c;
        }
        rest_positional = true;
    }
    if (optind >= argc)
        return OPT_END;
    *arg = argv[optind++];
    return OPT_POSITIONAL;
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
