/* count.c: `otelite-loadgen count FILE`, the other end of the loss check.
 * Reads what a sink wrote (the file exporter's OTLP JSON lines, or JSON log
 * lines) and tallies the loadgen.seq values per loadgen.run: items seen,
 * distinct seqs, duplicates, and missing = max seq + 1 - distinct (seqs
 * start at 0 and are dense, so every gap is an item lost).
 *
 * It scans text rather than decoding JSON: the key names are unique to the
 * generator, the values follow within a few bytes, and scanning keeps the
 * count fast on files of millions of items. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loadgen.h"

#define MAX_RUNS 64
#define MAX_SEQ (1ULL << 34)

typedef struct tally {
    char run[24];
    uint64_t items, distinct, dups, max_seq, too_big;
    uint64_t *bits;
    size_t words;
} tally;

static int mark(tally *t, uint64_t seq)
{
    t->items++;
    if (seq >= MAX_SEQ) {
        t->too_big++;
        return 0;
    }
    size_t w = (size_t)(seq >> 6);
    if (w >= t->words) {
        size_t nw = t->words ? t->words : 1024;
        while (nw <= w)
            nw *= 2;
        uint64_t *p = realloc(t->bits, nw * sizeof *p);
        if (!p)
            return -1;
        memset(p + t->words, 0, (nw - t->words) * sizeof *p);
        t->bits = p;
        t->words = nw;
    }
    uint64_t m = 1ULL << (seq & 63);
    if (t->bits[w] & m) {
        t->dups++;
    } else {
        t->bits[w] |= m;
        t->distinct++;
        if (seq > t->max_seq || t->distinct == 1)
            t->max_seq = seq;
    }
    return 0;
}

static uint64_t missing(const tally *t)
{
    return t->distinct ? t->max_seq + 1 - t->distinct : 0;
}

/* The run id after p (within the same item), or "" when there is none. */
static void find_run(const char *p, const char *end, char *out, size_t cap)
{
    out[0] = '\0';
    size_t win = (size_t)(end - p) < 400 ? (size_t)(end - p) : 400;
    const char *r = memmem(p, win, "\"loadgen.run\"", 13);
    if (!r)
        return;
    r += 13;
    const char *lim = r + 64 < end ? r + 64 : end;
    /* OTLP: ,"value":{"stringValue":"ID"}  application line: :"ID" */
    const char *sv = memmem(r, (size_t)(lim - r), "stringValue\":\"", 14);
    if (sv)
        r = sv + 14;
    else {
        while (r < lim && (*r == ':' || *r == ' '))
            r++;
        if (r >= lim || *r != '"')
            return;
        r++;
    }
    size_t n = 0;
    while (r + n < end && r[n] != '"' && n + 1 < cap)
        n++;
    memcpy(out, r, n);
    out[n] = '\0';
}

static tally *run_tally(tally *runs, size_t *n_runs, const char *id)
{
    for (size_t i = 0; i < *n_runs; i++)
        if (!strcmp(runs[i].run, id))
            return &runs[i];
    if (*n_runs == MAX_RUNS)
        return NULL;
    tally *t = &runs[(*n_runs)++];
    memset(t, 0, sizeof *t);
    snprintf(t->run, sizeof t->run, "%s", id);
    return t;
}

int lg_count_main(int argc, char **argv)
{
    const char *path = NULL, *only = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--run") && i + 1 < argc)
            only = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1])
            return fprintf(stderr, "otelite-loadgen count: unknown option \"%s\"\n", argv[i]), 2;
        else
            path = argv[i];
    }
    if (!path)
        return fprintf(stderr, "usage: otelite-loadgen count FILE [--run ID] [--json]\n"), 2;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "otelite-loadgen count: %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t len = (size_t)st.st_size;
    const char *data = "";
    void *map = NULL;
    if (len) {
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            fprintf(stderr, "otelite-loadgen count: %s: %s\n", path, strerror(errno));
            close(fd);
            return 1;
        }
        data = map;
    }
    static tally runs[MAX_RUNS];
    size_t n_runs = 0;
    uint64_t dropped_runs = 0;
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *k = memmem(p, (size_t)(end - p), "\"loadgen.seq\"", 13);
        if (!k)
            break;
        const char *q = k + 13;
        const char *lim = q + 48 < end ? q + 48 : end;
        while (q < lim && (*q < '0' || *q > '9'))
            q++;
        p = q;
        if (q >= lim)
            continue;
        uint64_t seq = 0;
        while (p < end && *p >= '0' && *p <= '9')
            seq = seq * 10 + (uint64_t)(*p++ - '0');
        char run[24];
        find_run(p, end, run, sizeof run);
        if (only && strcmp(run, only))
            continue;
        tally *t = run_tally(runs, &n_runs, run);
        if (!t) {
            dropped_runs++;
            continue;
        }
        if (mark(t, seq) < 0) {
            fprintf(stderr, "otelite-loadgen count: out of memory\n");
            return 1;
        }
    }
    tally tot;
    memset(&tot, 0, sizeof tot);
    uint64_t miss = 0;
    for (size_t i = 0; i < n_runs; i++) {
        tot.items += runs[i].items;
        tot.distinct += runs[i].distinct;
        tot.dups += runs[i].dups;
        miss += missing(&runs[i]);
    }
    if (json) {
        printf("{\"items\":%llu,\"distinct\":%llu,\"duplicates\":%llu,\"missing\":%llu,\"runs\":{",
               (unsigned long long)tot.items, (unsigned long long)tot.distinct,
               (unsigned long long)tot.dups, (unsigned long long)miss);
        for (size_t i = 0; i < n_runs; i++)
            printf("%s\"%s\":{\"items\":%llu,\"distinct\":%llu,\"duplicates\":%llu,\"missing\":%llu,"
                   "\"max_seq\":%llu}",
                   i ? "," : "", runs[i].run, (unsigned long long)runs[i].items,
                   (unsigned long long)runs[i].distinct, (unsigned long long)runs[i].dups,
                   (unsigned long long)missing(&runs[i]), (unsigned long long)runs[i].max_seq);
        printf("}}\n");
    } else {
        for (size_t i = 0; i < n_runs && n_runs > 1; i++)
            printf("run %s: items %llu, distinct %llu, duplicates %llu, missing %llu\n",
                   runs[i].run[0] ? runs[i].run : "(none)", (unsigned long long)runs[i].items,
                   (unsigned long long)runs[i].distinct, (unsigned long long)runs[i].dups,
                   (unsigned long long)missing(&runs[i]));
        printf("items %llu\ndistinct %llu\nduplicates %llu\nmissing %llu\n",
               (unsigned long long)tot.items, (unsigned long long)tot.distinct,
               (unsigned long long)tot.dups, (unsigned long long)miss);
        if (n_runs == 1)
            printf("run %s\n", runs[0].run[0] ? runs[0].run : "(none)");
    }
    if (dropped_runs)
        fprintf(stderr, "otelite-loadgen count: more than %d runs; %llu items not tallied\n", MAX_RUNS,
                (unsigned long long)dropped_runs);
    for (size_t i = 0; i < n_runs; i++)
        free(runs[i].bits);
    if (map)
        munmap(map, len);
    close(fd);
    return 0;
}
