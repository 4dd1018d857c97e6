/* fmnist_head.c - a wide softmax head (10 x 25088) trained on Fashion-MNIST.
 *
 * Like the paper's vision heads (VGG-19's last layer reads 512 x 7 x 7 =
 * 25088 features), but with a FIXED feature map instead of a trained network:
 *   phi(image) = avgpool4x4( relu( conv3x3(image / 255) + bias ) )
 * with 512 3x3 filters (zero padding, stride 1), so 28x28 -> 512 maps of
 * 28x28 -> pooled to 512 x 7 x 7, flattened channel-major (index
 * c*49 + row*7 + col, as a C-order 512x7x7 array). Channel 0 is a constant
 * channel (weights 0, bias 1: all its 49 features are 1) that carries the
 * classifier's bias, so d stays exactly 25088; channels 1..511 have weights and
 * biases uniform in [-1, 1) from splitmix64 with a fixed seed: deterministic.
 * A multinomial logistic regression is trained by plain SGD, one image at a
 * time, learning rate decaying linearly to 0, on all 60000 training images,
 * on standardised features (mean and standard deviation of each feature over
 * the first 2000 training images; without this, the large common component of
 * the non-negative features makes SGD crawl). The standardisation and the
 * bias are then folded into the weights: A = W / sigma per column, plus
 * (b - A mu) / 49 on each of channel 0's columns, so A phi(x) equals the
 * trained logits and X holds the raw, non-negative phi(x).
 *
 * Writes DIR/A.npy (10 x 25088 '<f4'), DIR/X.npy (features of the first NQ
 * test images, NQ x 25088 '<f4'), DIR/labels.npy (their classes, '<i4'), and
 * prints train/test accuracy.
 *
 * usage: fmnist_head DIR EPOCHS NQ
 *   DIR holds the four uncompressed idx files of Fashion-MNIST.
 * C99, libc + libm; assumes a little-endian host (checked).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIDE 28
#define NPIX (SIDE * SIDE)
#define NCH 512
#define POOL 4
#define CELLS ((SIDE / POOL) * (SIDE / POOL)) /* 49 */
#define NFEAT (NCH * CELLS)                   /* 25088 */
#define NCLASS 10
#ifndef LR_SCALE
#define LR_SCALE 1.0
#endif
#ifndef L2_DECAY
#define L2_DECAY 1e-4
#endif

static void die(const char *msg, const char *arg) {
    fprintf(stderr, "fmnist_head: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    exit(1);
}
static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory", NULL);
    return p;
}

/* ---- random numbers: splitmix64 (filters) and PCG32 (shuffling) ---- */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static float uniform_pm1(uint64_t *s) { /* [-1, 1) with 24 random bits: exact in float */
    return (float)(int32_t)((splitmix64(s) >> 40) - (1u << 23)) / (float)(1u << 23);
}
typedef struct { uint64_t state, inc; } pcg32;
static uint32_t pcg32_next(pcg32 *r) {
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xs = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xs >> rot) | (xs << ((0u - rot) & 31u));
}
static uint32_t pcg32_bounded(pcg32 *r, uint32_t bound) {
    uint32_t threshold = (0u - bound) % bound;
    for (;;) {
        uint32_t x = pcg32_next(r);
        if (x >= threshold) return x % bound;
    }
}

/* ---- idx files ---- */
static unsigned char *read_idx(const char *dir, const char *name, uint32_t magic, size_t *count) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot read", path);
    unsigned char h[16];
    size_t hn = (magic == 0x803) ? 16 : 8;
    if (fread(h, 1, hn, f) != hn) die("truncated idx header", path);
    uint32_t m = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    uint32_t n = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
    if (m != magic) die("bad idx magic", path);
    if (magic == 0x803) {
        uint32_t r = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
        uint32_t c = (uint32_t)h[12] << 24 | (uint32_t)h[13] << 16 | (uint32_t)h[14] << 8 | h[15];
        if (r != SIDE || c != SIDE) die("images are not 28x28", path);
    }
    size_t each = (magic == 0x803) ? NPIX : 1;
    unsigned char *d = (unsigned char *)xmalloc((size_t)n * each);
    if (fread(d, each, n, f) != n) die("truncated idx data", path);
    fclose(f);
    *count = n;
    return d;
}

/* ---- the feature map ---- */
static float filt[9][NCH]; /* tap-major so the channel loop is contiguous */
static float fbias[NCH];

static void init_filters(void) {
    uint64_t s = 0xADA50F7A3ULL; /* fixed seed */
    for (int k = 0; k < 9; k++) filt[k][0] = 0.0f; /* channel 0: constant 1 (carries the bias) */
    fbias[0] = 1.0f;
    for (int c = 1; c < NCH; c++) {
        for (int k = 0; k < 9; k++) filt[k][c] = uniform_pm1(&s);
        fbias[c] = uniform_pm1(&s);
    }
}

/* feat: CELLS x NCH, cell-major (the internal layout; the exported layout is
   channel-major, see to_channel_major). */
static void features(const unsigned char *img, float *feat) {
    float px[SIDE + 2][SIDE + 2];
    float act[NCH];
    memset(px, 0, sizeof px);
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) px[y + 1][x + 1] = (float)img[y * SIDE + x] / 255.0f;
    memset(feat, 0, sizeof(float) * NFEAT);
    const float inv = 1.0f / (float)(POOL * POOL);
    for (int y = 0; y < SIDE; y++) {
        for (int x = 0; x < SIDE; x++) {
            float p[9];
            for (int k = 0; k < 9; k++) p[k] = px[y + k / 3][x + k % 3];
            for (int c = 0; c < NCH; c++) act[c] = fbias[c];
            for (int k = 0; k < 9; k++) {
                const float pk = p[k];
                if (pk == 0.0f) continue; /* background: nothing to add */
                for (int c = 0; c < NCH; c++) act[c] += filt[k][c] * pk;
            }
            float *cell = feat + (size_t)((y / POOL) * (SIDE / POOL) + x / POOL) * NCH;
            for (int c = 0; c < NCH; c++) cell[c] += (act[c] > 0.0f ? act[c] : 0.0f) * inv;
        }
    }
}

static void to_channel_major(const float *cellmajor, float *out) {
    for (int cell = 0; cell < CELLS; cell++)
        for (int c = 0; c < NCH; c++) out[(size_t)c * CELLS + (size_t)cell] = cellmajor[(size_t)cell * NCH + (size_t)c];
}

/* logits z = W f, W is NCLASS x NFEAT in the same (cell-major) layout as f */
static void logits(const float *W, const float *f, double *z) {
    for (int k = 0; k < NCLASS; k++) {
        const float *w = W + (size_t)k * NFEAT;
        double s = 0;
        for (size_t j = 0; j < NFEAT; j++) s += (double)w[j] * (double)f[j];
        z[k] = s;
    }
}
static int softmax_argmax(double *z) { /* z -> probabilities, returns argmax */
    int best = 0;
    for (int k = 1; k < NCLASS; k++) if (z[k] > z[best]) best = k;
    double m = z[best], sum = 0;
    for (int k = 0; k < NCLASS; k++) { z[k] = exp(z[k] - m); sum += z[k]; }
    for (int k = 0; k < NCLASS; k++) z[k] /= sum;
    return best;
}

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

int main(int argc, char **argv) {
    if (argc != 4) die("usage: fmnist_head DIR EPOCHS NQ", NULL);
    const char *dir = argv[1];
    long epochs = atol(argv[2]), nq = atol(argv[3]);
    if (epochs < 1 || nq < 1) die("bad EPOCHS or NQ", NULL);
    {
        uint32_t one = 1;
        unsigned char b;
        memcpy(&b, &one, 1);
        if (b != 1) die("this tool assumes a little-endian host", NULL);
    }
    size_t ntr, ntrl, nte, ntel;
    unsigned char *trX = read_idx(dir, "train-images-idx3-ubyte", 0x803, &ntr);
    unsigned char *trY = read_idx(dir, "train-labels-idx1-ubyte", 0x801, &ntrl);
    unsigned char *teX = read_idx(dir, "t10k-images-idx3-ubyte", 0x803, &nte);
    unsigned char *teY = read_idx(dir, "t10k-labels-idx1-ubyte", 0x801, &ntel);
    if (ntr != ntrl || nte != ntel || ntr == 0 || nte == 0) die("image and label counts differ", dir);
    if ((size_t)nq > nte) nq = (long)nte;
    for (size_t i = 0; i < ntr; i++) if (trY[i] >= NCLASS) die("bad label", NULL);
    for (size_t i = 0; i < nte; i++) if (teY[i] >= NCLASS) die("bad label", NULL);
    init_filters();

    float *f = (float *)xmalloc(sizeof(float) * NFEAT);
    float *W = (float *)xmalloc(sizeof(float) * NCLASS * NFEAT);
    memset(W, 0, sizeof(float) * NCLASS * NFEAT);

    /* standardisation: per-feature mean and standard deviation (cell-major) */
    size_t nprobe = ntr < 2000 ? ntr : 2000;
    double *sum = (double *)xmalloc(sizeof(double) * NFEAT), *sum2 = (double *)xmalloc(sizeof(double) * NFEAT);
    memset(sum, 0, sizeof(double) * NFEAT);
    memset(sum2, 0, sizeof(double) * NFEAT);
    for (size_t i = 0; i < nprobe; i++) {
        features(trX + i * NPIX, f);
        for (size_t j = 0; j < NFEAT; j++) { sum[j] += (double)f[j]; sum2[j] += (double)f[j] * (double)f[j]; }
    }
    float *mu = (float *)xmalloc(sizeof(float) * NFEAT), *isd = (float *)xmalloc(sizeof(float) * NFEAT);
    for (size_t j = 0; j < NFEAT; j++) {
        double m = sum[j] / (double)nprobe, v = sum2[j] / (double)nprobe - m * m;
        mu[j] = (float)m;
        isd[j] = (float)(1.0 / sqrt((v > 0 ? v : 0) + 1e-6)); /* constant features: z = 0 */
    }
    free(sum);
    free(sum2);
    /* step size: standardised features have |z|^2 ~ NFEAT; SGD on the
       cross-entropy is stable for lr |z|^2 up to ~2 */
    const double lr0 = LR_SCALE / (double)NFEAT, l2 = L2_DECAY;
    fprintf(stderr, "fmnist_head: %zu train / %zu test images, %d features, lr0 = %.3g, L2 %.3g\n",
            ntr, nte, NFEAT, lr0, l2);

    float *zf = (float *)xmalloc(sizeof(float) * NFEAT);
    double bias[NCLASS] = {0};
    uint32_t *order = (uint32_t *)xmalloc(ntr * sizeof(uint32_t));
    for (size_t i = 0; i < ntr; i++) order[i] = (uint32_t)i;
    pcg32 rng = {0x853c49e6748fea9bULL, 0xda3e39cb94b95bdbULL};
    const double total = (double)epochs * (double)ntr;
    double z[NCLASS];
    for (long e = 0; e < epochs; e++) {
        for (size_t i = ntr; i > 1; i--) {
            uint32_t j = pcg32_bounded(&rng, (uint32_t)i);
            uint32_t t = order[i - 1]; order[i - 1] = order[j]; order[j] = t;
        }
        size_t correct = 0;
        double loss = 0;
        for (size_t s = 0; s < ntr; s++) {
            size_t i = order[s];
            const double lr = lr0 * (1.0 - ((double)e * (double)ntr + (double)s) / total);
            features(trX + i * NPIX, f);
            for (size_t j = 0; j < NFEAT; j++) zf[j] = (f[j] - mu[j]) * isd[j];
            logits(W, zf, z);
            for (int k = 0; k < NCLASS; k++) z[k] += bias[k];
            correct += (softmax_argmax(z) == trY[i]);
            loss -= log(z[trY[i]] + 1e-300);
            const float decay = (float)(1.0 - lr * l2);
            for (int k = 0; k < NCLASS; k++) {
                const double gk = z[k] - (k == trY[i] ? 1.0 : 0.0);
                const float g = (float)(lr * gk);
                float *w = W + (size_t)k * NFEAT;
                for (size_t j = 0; j < NFEAT; j++) w[j] = w[j] * decay - g * zf[j];
                bias[k] -= 1e-2 * lr * (double)NFEAT * gk; /* bias step 0.01 * LR_SCALE: its input is 1 */
            }
        }
        fprintf(stderr, "fmnist_head: epoch %ld: running train accuracy %.2f%%, mean loss %.4f\n", e + 1,
                100.0 * (double)correct / (double)ntr, loss / (double)ntr);
    }
    /* fold: logits = W ((f - mu) * isd) + b = (W * isd) f + (b - (W * isd) mu);
       the constant is spread over channel 0's 49 features (each equal to 1) */
    for (int k = 0; k < NCLASS; k++) {
        float *w = W + (size_t)k * NFEAT;
        double c = bias[k];
        for (size_t j = 0; j < NFEAT; j++) { w[j] *= isd[j]; c -= (double)w[j] * (double)mu[j]; }
        for (size_t cell = 0; cell < CELLS; cell++) w[cell * NCH + 0] = (float)(c / CELLS);
    }

    /* evaluation with the final weights */
    size_t ntreval = ntr < 10000 ? ntr : 10000, ctr = 0, cte = 0;
    for (size_t i = 0; i < ntreval; i++) {
        features(trX + i * NPIX, f);
        logits(W, f, z);
        ctr += (softmax_argmax(z) == trY[i]);
    }
    float *X = (float *)xmalloc(sizeof(float) * (size_t)nq * NFEAT);
    int32_t *y = (int32_t *)xmalloc(sizeof(int32_t) * (size_t)nq);
    double pmax = 0, zspread = 0;
    for (size_t i = 0; i < nte; i++) {
        features(teX + i * NPIX, f);
        logits(W, f, z);
        double zmin = z[0], zmax = z[0];
        for (int k = 1; k < NCLASS; k++) { zmin = fmin(zmin, z[k]); zmax = fmax(zmax, z[k]); }
        zspread += zmax - zmin;
        int best = softmax_argmax(z);
        cte += (best == teY[i]);
        pmax += z[best];
        if (i < (size_t)nq) {
            to_channel_major(f, X + i * NFEAT);
            y[i] = teY[i];
        }
    }
    printf("train accuracy (first %zu training images): %.2f%%\n", ntreval, 100.0 * (double)ctr / (double)ntreval);
    printf("test accuracy (%zu test images): %.2f%%\n", nte, 100.0 * (double)cte / (double)nte);
    printf("test: mean top-1 probability %.4f, mean logit range (max - min) %.3f\n", pmax / (double)nte,
           zspread / (double)nte);

    float *A = (float *)xmalloc(sizeof(float) * NCLASS * NFEAT);
    for (int k = 0; k < NCLASS; k++) to_channel_major(W + (size_t)k * NFEAT, A + (size_t)k * NFEAT);
    char path[4096];
    snprintf(path, sizeof path, "%s/A.npy", dir);
    write_npy(path, "<f4", NCLASS, NFEAT, 1, A, sizeof(float));
    snprintf(path, sizeof path, "%s/X.npy", dir);
    write_npy(path, "<f4", (size_t)nq, NFEAT, 1, X, sizeof(float));
    snprintf(path, sizeof path, "%s/labels.npy", dir);
    write_npy(path, "<i4", (size_t)nq, 1, 0, y, sizeof(int32_t));
    return 0;
}
