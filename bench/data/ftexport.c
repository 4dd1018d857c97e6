/* ftexport.c - export a fastText 0.9.2 supervised model as a softmax head.
 *
 * Reads MODEL.bin directly (float32 matrices, bit-exact, no text round trip)
 * and QUERIES.txt (lines "__label__<word> w1 ... wk"), then writes any of:
 *   -A FILE    the output matrix, n labels x d, .npy '<f4' (row i = label i
 *              in the model's label order); only for -loss ns/softmax/ova
 *   -X FILE    per query, the hidden vector fastText's predict uses, .npy '<f4'
 *   -y FILE    per query, the row index of its true label, .npy '<i4'
 *   -names F   the label words, one per line, in row order
 *   -pred F    check: `fasttext predict MODEL QUERIES 1` output; reports how
 *              often argmax(A x) is fastText's top-1 (needs an -A-able model)
 *   -svec F    check: `fasttext print-sentence-vectors` output; reports the
 *              largest difference to our hidden vectors
 * The hidden vector is computed as fastText's Model::computeHidden does: the
 * float sum, in line order, of the input rows of the known words plus "</s>"
 * (the end-of-line token), times (float)(1.0 / count). Valid only for models
 * trained with -wordNgrams 1 -maxn 0 (no n-gram or subword rows); refused
 * otherwise.
 *
 * usage: ftexport [options] MODEL.bin QUERIES.txt
 * C99, libc + libm only; assumes a little-endian host (checked).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *msg, const char *arg) {
    fprintf(stderr, "ftexport: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory", NULL);
    return p;
}

/* ---- reading the model file ---- */
static FILE *mf;
static const char *mpath;
static void rd(void *dst, size_t n) {
    if (fread(dst, 1, n, mf) != n) die("truncated or unreadable model file", mpath);
}
static int32_t rd_i32(void) { int32_t v; rd(&v, sizeof v); return v; }
static int64_t rd_i64(void) { int64_t v; rd(&v, sizeof v); return v; }

typedef struct {
    char **name;   /* entry strings (words, then labels) */
    int32_t size, nwords, nlabels;
} dict;

typedef struct { int64_t m, n; float *data; } matrix;

static void rd_matrix(matrix *x) {
    x->m = rd_i64();
    x->n = rd_i64();
    if (x->m <= 0 || x->n <= 0 || x->m > (int64_t)1 << 32 || x->n > 65536) die("bad matrix shape in model", mpath);
    size_t cnt = (size_t)x->m * (size_t)x->n;
    x->data = (float *)xmalloc(cnt * sizeof(float));
    rd(x->data, cnt * sizeof(float));
}

/* ---- string -> index hash (FNV-1a, open addressing) ---- */
typedef struct { int32_t *slot; size_t cap; char **keys; } strmap;
static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ULL; }
    return h;
}
static void map_build(strmap *m, char **keys, int32_t first, int32_t count) {
    size_t cap = 1;
    while (cap < (size_t)count * 2 + 2) cap *= 2;
    m->cap = cap;
    m->keys = keys;
    m->slot = (int32_t *)xmalloc(cap * sizeof(int32_t));
    for (size_t i = 0; i < cap; i++) m->slot[i] = -1;
    for (int32_t i = first; i < first + count; i++) {
        size_t h = (size_t)fnv1a(keys[i]) & (cap - 1);
        while (m->slot[h] >= 0) h = (h + 1) & (cap - 1);
        m->slot[h] = i;
    }
}
static int32_t map_get(const strmap *m, const char *key) {
    size_t h = (size_t)fnv1a(key) & (m->cap - 1);
    while (m->slot[h] >= 0) {
        if (strcmp(m->keys[m->slot[h]], key) == 0) return m->slot[h];
        h = (h + 1) & (m->cap - 1);
    }
    return -1;
}

/* ---- .npy v1.0 writer ---- */
static void write_npy(const char *path, const char *descr, size_t rows, size_t cols, int two_d,
                      const void *data, size_t elem) {
    char hdr[256];
    int len = two_d
        ? snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%zu, %zu), }", descr, rows, cols)
        : snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%zu,), }", descr, rows);
    if (len < 0 || len > 200) die("npy header too long", path);
    size_t total = 10 + (size_t)len + 1, pad = (64 - total % 64) % 64; /* align data to 64 bytes */
    size_t hlen = (size_t)len + pad + 1;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path); /* renamed when complete */
    FILE *f = fopen(tmp, "wb");
    if (!f) die("cannot write", tmp);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    fwrite(pre, 1, sizeof pre, f);
    fwrite(hdr, 1, (size_t)len, f);
    for (size_t i = 0; i < pad; i++) putc(' ', f);
    putc('\n', f);
    fwrite(data, elem, rows * cols, f);
    if (ferror(f) || fclose(f) != 0) die("write error", tmp);
    if (rename(tmp, path) != 0) die("cannot rename to", path);
}

/* ---- queries ---- */
typedef struct { char **tok; size_t ntok; } line;

static line *read_lines(const char *path, size_t *nlines) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot read", path);
    size_t cap = 1024, n = 0;
    line *ls = (line *)xmalloc(cap * sizeof(line));
    char buf[1 << 16];
    while (fgets(buf, sizeof buf, f)) {
        if (!strchr(buf, '\n') && !feof(f)) die("line too long", path);
        if (n == cap) {
            cap *= 2;
            line *g = (line *)realloc(ls, cap * sizeof(line));
            if (!g) die("out of memory", NULL);
            ls = g;
        }
        size_t tcap = 16, nt = 0;
        char **t = (char **)xmalloc(tcap * sizeof(char *));
        /* fastText's separators: space \n \r \t \v \f \0 */
        for (char *s = strtok(buf, " \n\r\t\v\f"); s; s = strtok(NULL, " \n\r\t\v\f")) {
            if (nt == tcap) {
                tcap *= 2;
                char **g = (char **)realloc(t, tcap * sizeof(char *));
                if (!g) die("out of memory", NULL);
                t = g;
            }
            size_t sl = strlen(s) + 1;
            t[nt] = (char *)xmalloc(sl);
            memcpy(t[nt++], s, sl);
        }
        ls[n].tok = t;
        ls[n].ntok = nt;
        n++;
    }
    fclose(f);
    *nlines = n;
    return ls;
}

static const char LABEL[] = "__label__";

/* fastText's Loss::sigmoid table index: 512 bins over [-8, 8], saturated outside */
static long sigmoid_bin(double x) {
    if (x < -8.0) return -1;
    if (x > 8.0) return 513;
    return (long)((x + 8.0) * 512.0 / 8.0 / 2.0);
}

int main(int argc, char **argv) {
    const char *outA = NULL, *outX = NULL, *outy = NULL, *outnames = NULL, *pred = NULL, *svec = NULL;
    int ai = 1;
    for (; ai + 1 < argc && argv[ai][0] == '-'; ai += 2) {
        const char *o = argv[ai], *v = argv[ai + 1];
        if (!strcmp(o, "-A")) outA = v;
        else if (!strcmp(o, "-X")) outX = v;
        else if (!strcmp(o, "-y")) outy = v;
        else if (!strcmp(o, "-names")) outnames = v;
        else if (!strcmp(o, "-pred")) pred = v;
        else if (!strcmp(o, "-svec")) svec = v;
        else die("unknown option", o);
    }
    if (argc - ai != 2) die("usage: ftexport [-A A.npy] [-X X.npy] [-y y.npy] [-names F] [-pred F] [-svec F] MODEL.bin QUERIES.txt", NULL);
    {
        uint32_t one = 1;
        unsigned char b;
        memcpy(&b, &one, 1);
        if (b != 1) die("this tool assumes a little-endian host", NULL);
    }
    mpath = argv[ai];
    mf = fopen(mpath, "rb");
    if (!mf) die("cannot read", mpath);

    /* header + Args (fastText 0.9.2: magic, version 12, 12 int32 + 1 double) */
    if (rd_i32() != 793712314) die("not a fastText model (bad magic)", mpath);
    int32_t version = rd_i32();
    if (version != 12) die("unsupported fastText model version (need 12)", mpath);
    int32_t a[12];
    for (int i = 0; i < 12; i++) a[i] = rd_i32();
    double sampling_t;
    rd(&sampling_t, sizeof sampling_t);
    int32_t dim = a[0], word_ngrams = a[5], loss = a[6], model = a[7], maxn = a[10];
    if (model != 3) die("not a supervised model", mpath);
    if (word_ngrams > 1 || maxn > 0) die("model uses word n-grams or subwords (train with -wordNgrams 1 -maxn 0)", mpath);

    /* Dictionary */
    dict d;
    d.size = rd_i32();
    d.nwords = rd_i32();
    d.nlabels = rd_i32();
    (void)rd_i64(); /* ntokens */
    int64_t prune = rd_i64();
    if (d.size <= 0 || d.nwords < 0 || d.nlabels <= 0 || d.nwords + d.nlabels != d.size) die("bad dictionary header", mpath);
    d.name = (char **)xmalloc((size_t)d.size * sizeof(char *));
    for (int32_t i = 0; i < d.size; i++) {
        char buf[4096];
        size_t n = 0;
        int c;
        while ((c = getc(mf)) != EOF && c != 0) {
            if (n + 1 >= sizeof buf) die("dictionary entry too long", mpath);
            buf[n++] = (char)c;
        }
        if (c == EOF) die("truncated dictionary", mpath);
        buf[n] = '\0';
        d.name[i] = (char *)xmalloc(n + 1);
        memcpy(d.name[i], buf, n + 1);
        (void)rd_i64();           /* count */
        int8_t type;
        rd(&type, 1);
        if (type != (i < d.nwords ? 0 : 1)) die("unexpected entry order in dictionary", mpath);
    }
    for (int64_t i = 0; i < prune; i++) { (void)rd_i32(); (void)rd_i32(); }
    uint8_t quant, qout;
    rd(&quant, 1);
    if (quant) die("quantized models are not supported", mpath);
    matrix in, out;
    rd_matrix(&in);
    rd(&qout, 1);
    if (qout) die("quantized output matrix not supported", mpath);
    rd_matrix(&out);
    fclose(mf);
    if (in.n != dim || out.n != dim || in.m < d.nwords || out.m != d.nlabels) die("matrix shapes disagree with the dictionary", mpath);
    const int flat = (loss == 2 || loss == 3 || loss == 4); /* ns, softmax, one-vs-all */
    fprintf(stderr, "ftexport: %s: %d words, %d labels, dim %d, loss %s\n", mpath, d.nwords, d.nlabels, dim,
            loss == 1 ? "hs" : loss == 2 ? "ns" : loss == 3 ? "softmax" : loss == 4 ? "ova" : "?");
    if ((outA || pred) && !flat) die("-A / -pred need a flat output layer (not -loss hs)", mpath);

    strmap words, labels;
    map_build(&words, d.name, 0, d.nwords);
    map_build(&labels, d.name, d.nwords, d.nlabels);
    int32_t eos = map_get(&words, "</s>");

    size_t nq;
    line *q = read_lines(argv[ai + 1], &nq);
    if (nq == 0) die("no queries", argv[ai + 1]);
    size_t D = (size_t)dim;
    float *X = (float *)xmalloc(nq * D * sizeof(float));
    int32_t *y = (int32_t *)xmalloc(nq * sizeof(int32_t));
    size_t nempty = 0;
    for (size_t i = 0; i < nq; i++) {
        float *h = X + i * D;
        size_t cnt = 0;
        for (size_t j = 0; j < D; j++) h[j] = 0.0f;
        y[i] = -1;
        for (size_t t = 0; t <= q[i].ntok; t++) {
            int32_t id;
            if (t == q[i].ntok) id = eos; /* fastText appends "</s>" at the newline */
            else if (!strncmp(q[i].tok[t], LABEL, sizeof LABEL - 1)) {
                int32_t l = map_get(&labels, q[i].tok[t]);
                if (l >= 0 && y[i] < 0) y[i] = l - d.nwords;
                continue;
            } else id = map_get(&words, q[i].tok[t]);
            if (id < 0) continue;
            const float *row = in.data + (size_t)id * D;
            for (size_t j = 0; j < D; j++) h[j] += row[j];
            cnt++;
        }
        if (cnt == 0) { nempty++; continue; }
        float scale = (float)(1.0 / (double)cnt);
        for (size_t j = 0; j < D; j++) h[j] *= scale;
    }
    size_t nolabel = 0;
    for (size_t i = 0; i < nq; i++) nolabel += (y[i] < 0);
    fprintf(stderr, "ftexport: %zu queries (%zu without known words, %zu whose label is not in the model)\n", nq, nempty, nolabel);

    if (outA) write_npy(outA, "<f4", (size_t)out.m, D, 1, out.data, sizeof(float));
    if (outX) write_npy(outX, "<f4", nq, D, 1, X, sizeof(float));
    if (outy) write_npy(outy, "<i4", nq, 1, 0, y, sizeof(int32_t));
    if (outnames) {
        FILE *f = fopen(outnames, "w");
        if (!f) die("cannot write", outnames);
        for (int32_t l = 0; l < d.nlabels; l++) fprintf(f, "%s\n", d.name[d.nwords + l] + sizeof LABEL - 1);
        if (ferror(f) || fclose(f) != 0) die("write error", outnames);
    }

    if (svec) { /* print-sentence-vectors prints text with a few significant digits */
        FILE *f = fopen(svec, "r");
        if (!f) die("cannot read", svec);
        double maxabs = 0, maxrel = 0;
        for (size_t i = 0; i < nq; i++) {
            double xmax = 0;
            for (size_t j = 0; j < D; j++) xmax = fmax(xmax, fabs((double)X[i * D + j]));
            for (size_t j = 0; j < D; j++) {
                double v;
                if (fscanf(f, "%lf", &v) != 1) die("short sentence-vector file", svec);
                double e = fabs(v - (double)X[i * D + j]);
                maxabs = fmax(maxabs, e);
                if (xmax > 0) maxrel = fmax(maxrel, e / xmax);
            }
        }
        fclose(f);
        printf("sentence-vectors: max |ours - fasttext| = %.3g (%.3g of the row's max |x|) over %zu x %zu values\n",
               maxabs, maxrel, nq, D);
    }

    if (pred) {
        FILE *f = fopen(pred, "r");
        if (!f) die("cannot read", pred);
        size_t agree = 0, tied = 0, other = 0, hit = 0, nlab = (size_t)d.nlabels;
        double *z = (double *)xmalloc(nlab * sizeof(double));
        char buf[4096];
        for (size_t i = 0; i < nq; i++) {
            if (!fgets(buf, sizeof buf, f)) die("short prediction file", pred);
            buf[strcspn(buf, " \n")] = '\0';
            int32_t ft = map_get(&labels, buf);
            if (ft < 0) die("prediction is not a label of the model", buf);
            ft -= d.nwords;
            size_t best = 0;
            for (size_t l = 0; l < nlab; l++) {
                const float *row = out.data + l * D;
                double s = 0;
                for (size_t j = 0; j < D; j++) s += (double)row[j] * (double)X[i * D + j];
                z[l] = s;
                if (s > z[best]) best = l;
            }
            hit += (y[i] >= 0 && (size_t)y[i] == best);
            if ((size_t)ft == best) agree++;
            /* fastText's ns predict ranks sigmoid(z) read from a 512-entry table:
               labels in the same table bin are ties for it */
            else if (loss == 2 && sigmoid_bin(z[ft]) == sigmoid_bin(z[best])) tied++;
            else other++;
        }
        fclose(f);
        printf("predict check: argmax(A x) == fasttext top-1 for %zu / %zu queries (%.2f%%)", agree, nq,
               100.0 * (double)agree / (double)nq);
        if (loss == 2) printf("; %zu more are ties in fastText's sigmoid table; %zu unexplained", tied, other);
        printf("\n");
        printf("model: argmax(A x) is the true next word for %zu / %zu queries (%.2f%%)\n", hit, nq,
               100.0 * (double)hit / (double)nq);
        free(z);
    }
    return 0;
}
