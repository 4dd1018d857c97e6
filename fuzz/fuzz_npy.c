/* Fuzzing the strict .npy reader of the adasoftmax tool (examples/npy.h):
   every input is either refused with one printable line, or parsed into an
   array whose size matches its shape and dtype exactly. */
#define NPY_IMPLEMENTATION
#define NPY_STATIC
#include "../examples/npy.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[256];
  npy_array a;
  unsigned mask = size ? (data[0] & 15u) : 1u; /* allowed dtypes */
  int rank = size > 1 ? data[1] % 4 : 2;      /* 0 = any rank */
  if (size > 2) {
    data += 2;
    size -= 2;
  }
  memset(&a, 0, sizeof a);
  if (npy_parse(data, size, mask, rank, &a, err, sizeof err) == NPY_OK) {
    volatile unsigned char sink = 0;
    if (!(a.dtype & mask)) abort(); /* a dtype the caller did not allow */
    if (a.nbytes) sink = ((unsigned char *)a.data)[a.nbytes - 1];
    (void)sink;
    npy_free(&a);
  } else {
    size_t i, n = strlen(err); /* the message: one printable line */
    if (n == 0) abort();
    for (i = 0; i < n; i++)
      if ((unsigned char)err[i] < 0x20 || err[i] == 0x7f) abort();
  }
  return 0;
}
