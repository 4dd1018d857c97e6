/* tests/test_util.h - what the test programs share: the CHECK harness,
   xmalloc and (on request) a counting, failing allocator for ADASM_MALLOC /
   ADASM_FREE. Header-only, C99 (and C++11); every function is static inline,
   so a test that uses only part of it gets no unused-function warning.

   Options, defined before the include:
     TEST_ALLOCATOR   the allocator: test_malloc, test_free and their state
                      `ta`. Route the library to it before the
                      implementation include:
                        #define TEST_ALLOCATOR
                        #include "test_util.h"
                        #define ADASM_MALLOC(sz, ctx) test_malloc((sz), (ctx))
                        #define ADASM_FREE(p, ctx) test_free((p), (ctx))
                        #define ADASOFTMAX_IMPLEMENTATION
                        #include "adasoftmax.h"
     TEST_MAX_LIVE    slots of its live-block table (default 64): one more
                      live block than this is counted as bad (the test holds
                      more than it expects) and refused.
     TEST_TYPED_CTX   every non-NULL allocation context is a test_ctx
                      (test_ctx_init): its magic is checked on each malloc,
                      and it counts its own mallocs, frees and live blocks. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tiny harness ------------------------------------------------------- */
static int g_checks = 0, g_fails = 0;
#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    ++g_checks;                                                                \
    if (!(cond)) {                                                             \
      ++g_fails;                                                               \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);                              \
      printf(__VA_ARGS__);                                                     \
      printf("\n");                                                            \
    }                                                                          \
  } while (0)

/* malloc, or print and exit(2): test data, never the library's memory */
static inline void *xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) {
    printf("out of memory (%lu bytes)\n", (unsigned long)bytes);
    exit(2);
  }
  return p;
}

#ifdef TEST_ALLOCATOR
#if defined(ADASOFTMAX_IMPLEMENTATION_INCLUDED)
#error "test_util.h: include it (and define ADASM_MALLOC/ADASM_FREE) before the adasoftmax.h implementation"
#endif

/* ---- the counting, failing allocator ------------------------------------- */
#ifdef TEST_TYPED_CTX
/* A caller's allocation context: the library must hand it to the allocator
   unchanged, and free each block with the context it was allocated with. */
#define TEST_CTX_MAGIC 0xc0ffee11u
typedef struct test_ctx {
  unsigned magic;
  long mallocs, frees, live;
} test_ctx;

static inline void test_ctx_init(test_ctx *c) {
  memset(c, 0, sizeof *c);
  c->magic = TEST_CTX_MAGIC;
}
#endif

#ifndef TEST_MAX_LIVE
#define TEST_MAX_LIVE 64
#endif

/* Injection state, shared by every context (the library may also allocate
   with a NULL context). Only calls made while `armed` are counted and may
   fail: a test arms the allocator just around the calls under test, or
   keeps it armed to count every call. Zero at start: disarmed, nothing
   fails. */
static struct {
  int armed;
  long calls;       /* test_malloc calls while armed */
  long fail_at;     /* 1-based armed call that fails; 0: none */
  int fail_rest;    /* also fail every armed call after fail_at */
  long injected;    /* failures handed out */
  long live;        /* blocks handed out and not yet freed (all contexts) */
  long bad;         /* wrong context, foreign pointer, double free, table full */
  int check_ctx;    /* compare every malloc's context with expect_ctx */
  void *expect_ctx;
  void *last_ctx;   /* context of the latest test_malloc call (armed or not) */
  /* live blocks and their contexts, so a free can be checked against its
     malloc without reading freed memory (a double free is a table miss) */
  void *live_ptr[TEST_MAX_LIVE];
  void *live_ctx[TEST_MAX_LIVE];
} ta;

static inline void *test_malloc(size_t size, void *ctx) {
  void *p;
  size_t slot;
  ta.last_ctx = ctx;
#ifdef TEST_TYPED_CTX
  if (ctx != NULL && ((test_ctx *)ctx)->magic != TEST_CTX_MAGIC)
    ++ta.bad; /* not our context */
#endif
  if (ta.check_ctx && ctx != ta.expect_ctx) ++ta.bad;
  if (ta.armed) {
    ++ta.calls;
    if (ta.fail_at > 0 &&
        (ta.calls == ta.fail_at || (ta.fail_rest && ta.calls > ta.fail_at))) {
      ++ta.injected;
      return NULL;
    }
  }
  for (slot = 0; slot < TEST_MAX_LIVE && ta.live_ptr[slot] != NULL; ++slot) {
  }
  if (slot == TEST_MAX_LIVE) { /* more live blocks than this test expects */
    ++ta.bad;
    return NULL;
  }
  p = malloc(size ? size : 1);
  if (!p) return NULL;
  ta.live_ptr[slot] = p;
  ta.live_ctx[slot] = ctx;
  ++ta.live;
#ifdef TEST_TYPED_CTX
  if (ctx != NULL && ((test_ctx *)ctx)->magic == TEST_CTX_MAGIC) {
    ++((test_ctx *)ctx)->mallocs;
    ++((test_ctx *)ctx)->live;
  }
#endif
  return p;
}

static inline void test_free(void *p, void *ctx) {
  size_t slot;
  if (p == NULL) return; /* free(NULL) is a no-op, like libc's */
  for (slot = 0; slot < TEST_MAX_LIVE && ta.live_ptr[slot] != p; ++slot) {
  }
  if (slot == TEST_MAX_LIVE || ta.live_ctx[slot] != ctx) { /* double/foreign */
    ++ta.bad;
    return; /* leaking is safer than freeing what we did not hand out */
  }
  ta.live_ptr[slot] = NULL;
  --ta.live;
#ifdef TEST_TYPED_CTX
  if (ctx != NULL) { /* it was allocated with this context: one of ours */
    ++((test_ctx *)ctx)->frees;
    --((test_ctx *)ctx)->live;
  }
#endif
  free(p);
}
#endif /* TEST_ALLOCATOR */

#endif /* TEST_UTIL_H */
