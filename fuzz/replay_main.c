/* Replays files through a libFuzzer harness without libFuzzer, so every
   harness also runs as an ordinary test over its checked-in corpus. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv) {
  int i, ran = 0;
  for (i = 1; i < argc; ++i) {
    FILE *f = fopen(argv[i], "rb");
    unsigned char *buf;
    long len;
    if (!f) { fprintf(stderr, "replay: cannot open %s\n", argv[i]); return 2; }
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
      fprintf(stderr, "replay: cannot size %s\n", argv[i]);
      fclose(f);
      return 2;
    }
    buf = (unsigned char *)malloc((size_t)len + 1);
    if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
      fprintf(stderr, "replay: cannot read %s\n", argv[i]);
      free(buf);
      fclose(f);
      return 2;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)len);
    free(buf);
    ++ran;
  }
  printf("replayed %d inputs\n", ran);
  return 0;
}
