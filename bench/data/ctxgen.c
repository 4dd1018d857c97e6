/* ctxgen.c - turn plain English text into fastText next-word training lines.
 *
 * Reads a corpus on stdin ('\f' separates documents), tokenises it and writes
 *   TRAIN    one line per drawn training position: "__label__<next> <W previous words>",
 *            the TAG nearest of them suffixed with their distance: "... of@2 the@1"
 *            (CAP positions drawn uniformly without replacement, written in
 *            a seeded random order, so fastText's linearly decaying learning
 *            rate does not see one source at a time)
 *   VALID    NVALID held-out lines (for fastText `test`)
 *   QUERIES  NQ held-out lines
 * (held-out lines: positions whose next word is a label, evenly spaced over
 * the held-out text)
 * and prints statistics on stderr.
 *
 * Tokens: ASCII letters lowercased, digits, and an apostrophe between two
 * token characters (UTF-8 U+2019 counts as one); every other byte separates.
 * An all-digit token becomes "<num>"; tokens longer than 30 bytes are dropped.
 * Labels: the words whose count among the drawn positions is at least a threshold,
 * the smallest threshold that keeps at most NMAX labels; fewer than NMIN
 * labels is an error (corpus too small).
 * Held out: every position whose global index i has (i / 1000) % 50 == 17,
 * i.e. 2% of the text in blocks of 1000 tokens.
 * A position is used only when its W previous tokens are in the same document.
 *
 * usage: ctxgen W TAG NMIN NMAX CAP NQ NVALID TRAIN VALID QUERIES < corpus.txt
 * C99, libc only.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXTOK 30
#define SEG 1000u
#define SEG_MOD 50u
#define SEG_HELD 17u

static void die(const char *msg) {
    fprintf(stderr, "ctxgen: %s\n", msg);
    exit(1);
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q) die("out of memory");
    return q;
}

/* ---- PCG32 (O'Neill, pcg-random.org), re-implemented: seeded shuffle ---- */
typedef struct { uint64_t state, inc; } pcg32;
static uint32_t pcg32_next(pcg32 *r) {
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xs = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xs >> rot) | (xs << ((0u - rot) & 31u));
}
static void pcg32_seed(pcg32 *r, uint64_t seed, uint64_t seq) {
    r->state = 0u;
    r->inc = (seq << 1u) | 1u;
    (void)pcg32_next(r);
    r->state += seed;
    (void)pcg32_next(r);
}
static uint32_t pcg32_bounded(pcg32 *r, uint32_t bound) {
    uint32_t threshold = (0u - bound) % bound; /* rejection: no modulo bias */
    for (;;) {
        uint32_t x = pcg32_next(r);
        if (x >= threshold) return x % bound;
    }
}

/* ---- vocabulary: open-addressing hash of token strings -> id ---- */
static char *pool;           /* '\0'-terminated strings, back to back */
static size_t pool_len, pool_cap;
static size_t *word_off;     /* id -> offset in pool */
static uint64_t *word_cnt;   /* id -> count as a training label */
static uint32_t nwords, words_cap;
static int32_t *slots;       /* hash slot -> id, -1 empty */
static size_t nslots;

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ULL; }
    return h;
}

static void rehash(size_t cap) {
    free(slots);
    slots = (int32_t *)xrealloc(NULL, cap * sizeof *slots);
    for (size_t i = 0; i < cap; i++) slots[i] = -1;
    nslots = cap;
    for (uint32_t id = 0; id < nwords; id++) {
        const char *w = pool + word_off[id];
        size_t h = (size_t)fnv1a(w, strlen(w)) & (cap - 1);
        while (slots[h] >= 0) h = (h + 1) & (cap - 1);
        slots[h] = (int32_t)id;
    }
}

static int32_t intern(const char *s, size_t n) {
    if ((size_t)nwords * 2 >= nslots) rehash(nslots ? nslots * 2 : 1u << 16);
    size_t h = (size_t)fnv1a(s, n) & (nslots - 1);
    while (slots[h] >= 0) {
        const char *w = pool + word_off[slots[h]];
        if (strncmp(w, s, n) == 0 && w[n] == '\0') return slots[h];
        h = (h + 1) & (nslots - 1);
    }
    if (nwords == INT32_MAX) die("too many distinct tokens");
    if (nwords == words_cap) {
        words_cap = words_cap ? words_cap * 2 : 1u << 16;
        word_off = (size_t *)xrealloc(word_off, words_cap * sizeof *word_off);
        word_cnt = (uint64_t *)xrealloc(word_cnt, words_cap * sizeof *word_cnt);
    }
    while (pool_len + n + 1 > pool_cap) {
        pool_cap = pool_cap ? pool_cap * 2 : 1u << 20;
        pool = (char *)xrealloc(pool, pool_cap);
    }
    memcpy(pool + pool_len, s, n);
    pool[pool_len + n] = '\0';
    word_off[nwords] = pool_len;
    word_cnt[nwords] = 0;
    pool_len += n + 1;
    slots[h] = (int32_t)nwords;
    return (int32_t)nwords++;
}

/* ---- token stream: ids, with -1 marking a document boundary ---- */
static int32_t *toks;
static size_t ntoks, toks_cap;
static void push_tok(int32_t id) {
    if (ntoks == toks_cap) {
        toks_cap = toks_cap ? toks_cap * 2 : 1u << 20;
        toks = (int32_t *)xrealloc(toks, toks_cap * sizeof *toks);
    }
    toks[ntoks++] = id;
}

static int is_tokch(int c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/* n may exceed MAXTOK (then only the first MAXTOK + 2 bytes are stored). */
static void emit(char *buf, size_t n) {
    if (n > MAXTOK + 1) return;
    /* strip apostrophes left dangling at the end (leading ones never enter) */
    while (n > 0 && buf[n - 1] == '\'') n--;
    if (n == 0 || n > MAXTOK) return;
    int digits = 1;
    for (size_t i = 0; i < n; i++) if (buf[i] < '0' || buf[i] > '9') { digits = 0; break; }
    if (digits) push_tok(intern("<num>", 5));
    else push_tok(intern(buf, n));
}

/* The corpus is read whole (a few hundred MB at most) to scan it simply. */
static void tokenise(FILE *in) {
    size_t len = 0, cap = 1u << 24;
    unsigned char *text = (unsigned char *)xrealloc(NULL, cap);
    for (;;) {
        size_t got = fread(text + len, 1, cap - len, in);
        len += got;
        if (len < cap) break;
        cap *= 2;
        text = (unsigned char *)xrealloc(text, cap);
    }
    char buf[MAXTOK + 2];
    size_t n = 0;           /* current token length (may exceed MAXTOK) */
    int at_boundary = 1;    /* no token since the last document boundary */
    for (size_t p = 0; p < len; p++) {
        int c = text[p];
        if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
        if (c == 0xE2 && p + 2 < len && text[p + 1] == 0x80 && text[p + 2] == 0x99) {
            c = '\''; /* U+2019 as an apostrophe */
            p += 2;
        }
        if (is_tokch(c) || (c == '\'' && n > 0)) {
            if (n < sizeof buf) buf[n] = (char)c;
            n++;
            continue;
        }
        if (n > 0) { emit(buf, n); n = 0; at_boundary = 0; }
        if (c == '\f' && !at_boundary) { push_tok(-1); at_boundary = 1; }
    }
    if (n > 0) emit(buf, n);
    free(text);
}

static int held_out(size_t i) { return (i / SEG) % SEG_MOD == SEG_HELD; }

static int cmp_desc(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x < y) - (x > y);
}

/* the TAG nearest context words carry their distance ("of@2 the@1"), so the
   bag of words fastText averages still knows which words came last */
static unsigned TAG;
static void write_line(FILE *f, size_t i, unsigned w) {
    fputs("__label__", f);
    fputs(pool + word_off[toks[i]], f);
    for (size_t k = i - w; k < i; k++) {
        putc(' ', f);
        fputs(pool + word_off[toks[k]], f);
        if (i - k <= TAG) fprintf(f, "@%zu", i - k);
    }
    putc('\n', f);
}

static FILE *xopen(const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) { fprintf(stderr, "ctxgen: cannot write %s\n", path); exit(1); }
    return f;
}
static void xclose(FILE *f, const char *path) {
    if (ferror(f) || fclose(f) != 0) { fprintf(stderr, "ctxgen: write error on %s\n", path); exit(1); }
}

int main(int argc, char **argv) {
    if (argc != 11) die("usage: ctxgen W TAG NMIN NMAX CAP NQ NVALID TRAIN VALID QUERIES < corpus.txt");
    long w = atol(argv[1]), tag = atol(argv[2]), nmin = atol(argv[3]), nmax = atol(argv[4]), cap = atol(argv[5]),
         nq = atol(argv[6]), nvalid = atol(argv[7]);
    argv += 1; /* TRAIN VALID QUERIES are argv[7..9] below */
    if (w < 1 || w > 64 || tag < 0 || tag > w || nmin < 1 || nmax < nmin || cap < 1 || nq < 1 || nvalid < 1)
        die("bad W/TAG/NMIN/NMAX/CAP/NQ/NVALID");
    TAG = (unsigned)tag;
    unsigned W = (unsigned)w;

    tokenise(stdin);
    if (ferror(stdin)) die("read error on stdin");
    if (ntoks > UINT32_MAX) die("corpus too large for 32-bit positions");

    /* eligible(i): W previous tokens exist and none is a document boundary */
    unsigned char *elig = (unsigned char *)xrealloc(NULL, ntoks ? ntoks : 1);
    size_t run = 0, ndocs = 1, nelig_train = 0;
    for (size_t i = 0; i < ntoks; i++) {
        elig[i] = (unsigned char)(toks[i] >= 0 && run >= W);
        if (toks[i] < 0) { run = 0; ndocs++; } else run++;
        if (elig[i] && !held_out(i)) nelig_train++;
    }
    fprintf(stderr, "ctxgen: %zu tokens, %zu documents, %u distinct tokens, %zu training positions\n",
            ntoks - (ndocs - 1), ndocs, nwords, nelig_train);

    /* draw CAP training positions uniformly: shuffle all, keep the first CAP */
    uint32_t *tr = (uint32_t *)xrealloc(NULL, (nelig_train ? nelig_train : 1) * sizeof *tr);
    size_t ntrain = 0;
    for (size_t i = 0; i < ntoks; i++) if (elig[i] && !held_out(i)) tr[ntrain++] = (uint32_t)i;
    pcg32 rng;
    pcg32_seed(&rng, 0x5eed2024u, 7u);
    for (size_t i = ntrain; i > 1; i--) {
        uint32_t j = pcg32_bounded(&rng, (uint32_t)i);
        uint32_t t = tr[i - 1]; tr[i - 1] = tr[j]; tr[j] = t;
    }
    if (ntrain > (size_t)cap) ntrain = (size_t)cap;
    for (size_t i = 0; i < ntrain; i++) word_cnt[toks[tr[i]]]++;

    /* threshold: smallest count c such that #{count >= c} <= NMAX */
    uint64_t *sorted = (uint64_t *)xrealloc(NULL, (nwords ? nwords : 1) * sizeof *sorted);
    memcpy(sorted, word_cnt, nwords * sizeof *sorted);
    qsort(sorted, nwords, sizeof *sorted, cmp_desc);
    uint64_t minc = ((size_t)nmax < nwords) ? sorted[nmax] + 1 : 1;
    size_t nlab = 0;
    for (uint32_t id = 0; id < nwords; id++) if (word_cnt[id] >= minc) nlab++;
    fprintf(stderr, "ctxgen: %zu positions drawn; label threshold %llu occurrences -> %zu labels\n",
            ntrain, (unsigned long long)minc, nlab);
    if (nlab < (size_t)nmin) {
        fprintf(stderr, "ctxgen: only %zu labels (need >= %ld): the corpus is too small\n", nlab, nmin);
        return 1;
    }

    size_t nheld = 0, nwritten = 0;
    for (size_t i = 0; i < ntoks; i++) nheld += (elig[i] && held_out(i) && word_cnt[toks[i]] >= minc);
    if (nheld < (size_t)nq || nheld < (size_t)nvalid) die("fewer held-out positions than queries requested");
    uint32_t *ho = (uint32_t *)xrealloc(NULL, nheld * sizeof *ho);
    size_t b = 0;
    for (size_t i = 0; i < ntoks; i++)
        if (elig[i] && held_out(i) && word_cnt[toks[i]] >= minc) ho[b++] = (uint32_t)i;

    FILE *f = xopen(argv[7]);
    for (size_t i = 0; i < ntrain; i++)
        if (word_cnt[toks[tr[i]]] >= minc) { write_line(f, tr[i], W); nwritten++; }
    xclose(f, argv[7]);
    /* VALID and QUERIES: evenly spaced over the held-out positions, VALID
       offset by half a step so that the two sets do not coincide */
    f = xopen(argv[8]);
    for (size_t v = 0; v < (size_t)nvalid; v++) write_line(f, ho[(2 * v + 1) * nheld / (2 * (size_t)nvalid)], W);
    xclose(f, argv[8]);
    f = xopen(argv[9]);
    for (size_t q = 0; q < (size_t)nq; q++) write_line(f, ho[q * nheld / (size_t)nq], W);
    xclose(f, argv[9]);
    fprintf(stderr, "ctxgen: %zu training lines; %zu held-out positions -> %ld validation lines, %ld queries"
            " (context %u words)\n", nwritten, nheld, nvalid, nq, W);
    return 0;
}
