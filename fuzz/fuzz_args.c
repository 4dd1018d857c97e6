/* Fuzzing the adasoftmax tool's argument parser (examples/adasoftmax.c).

   The input is split at NUL bytes into argv[2..] (at most 32 arguments);
   its first byte picks the command (bit 1: sample, else bit 0: demo or
   query). Only the parser runs:
   executing a parsed command would read and write files the input names.

   Checks: the parser returns "go on" (-1), 0 (--help printed the usage) or
   the usage-error exit code 2, nothing else; on an error it wrote exactly
   one printable line to stderr and nothing to stdout; on "go on" nothing
   was printed and every option holds a value the tool documents (k >= 1,
   eps and delta in (0, 1), temperature finite and > 0 as a float, a known
   method, ISA and weights dtype, non-empty file names, demo sizes in
   range; for sample: T finite and >= 0, top-p and min-p in [0, 1], draws
   in 1..2^31).

   stdout and stderr are redirected to temporary files for the check (the
   tool prints through the stdio macros, renamed below before its code is
   included). */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* as the tool sets it, before any header */
#endif
#define main adasoftmax_tool_main
#include <stdio.h>
static FILE *fuzz_stdout, *fuzz_stderr;
#undef stdout
#undef stderr
#define stdout fuzz_stdout
#define stderr fuzz_stderr
#include "../examples/adasoftmax.c"
#undef stdout
#undef stderr
#undef main

#define MAX_ARGS 32

/* Everything written to f since the last rewind, NUL-terminated. */
static size_t slurp(FILE *f, char *buf, size_t cap) {
  long len;
  size_t got;
  fflush(f);
  len = ftell(f);
  if (len < 0) abort();
  rewind(f);
  /* older, longer output may follow: read only this run's */
  got = fread(buf, 1, (size_t)len < cap - 1 ? (size_t)len : cap - 1, f);
  buf[got] = '\0';
  rewind(f);
  return (size_t)len;
}

static void check_one_line(const char *s, size_t len) {
  size_t i;
  if (len < 2 || s[len - 1] != '\n') abort(); /* one non-empty line */
  for (i = 0; i + 1 < len; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f) abort();
  if (strncmp(s, "adasoftmax: ", 12) != 0) abort();
}

static void check_options(const options *o, unsigned cmd) {
  if (o->k < 1) abort();
  if (!(o->eps > 0.0 && o->eps < 1.0)) abort();
  if (!(o->delta > 0.0 && o->delta < 1.0)) abort();
  if (!(o->beta > 0.0f) || !isfinite(o->beta)) abort();
  if ((int)o->method < 0 || o->method >= METHOD_COUNT) abort();
  if (o->weights_dtype != -1 && o->weights_dtype != ADASM_F32 &&
      o->weights_dtype != ADASM_F16 && o->weights_dtype != ADASM_BF16)
    abort();
  if (o->isa != ADASM_ISA_AUTO && o->isa != ADASM_ISA_SCALAR &&
      o->isa != ADASM_ISA_AVX2 && o->isa != ADASM_ISA_AVX512 &&
      o->isa != ADASM_ISA_NEON)
    abort();
  if ((o->weights && !o->weights[0]) || (o->queries && !o->queries[0]) ||
      (o->out && !o->out[0]) || (o->hs_model && !o->hs_model[0]))
    abort();
  if (cmd == CMD_SAMPLE) {
    if (!(o->sample_t >= 0.0f) || !isfinite(o->sample_t)) abort();
    if (!(o->top_p >= 0.0f && o->top_p <= 1.0f)) abort();
    if (!(o->min_p >= 0.0f && o->min_p <= 1.0f)) abort();
    if (o->draws < 1 || o->draws > ((size_t)1 << 31)) abort();
  }
  if (cmd == CMD_DEMO) {
    if (o->demo_n < 1 || o->demo_n > (size_t)UINT32_MAX) abort();
    if (o->demo_d < 1 || o->demo_d > ((size_t)1 << 24)) abort();
    if (o->demo_q < 1 || o->demo_q > 1000000) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char text[1 << 16], out_buf[1 << 16], err_buf[1 << 12];
  char *argv[MAX_ARGS + 3];
  int argc = 2, r;
  unsigned cmd;
  size_t i, start, out_len, err_len;
  options o;

  if (!fuzz_stdout) fuzz_stdout = tmpfile();
  if (!fuzz_stderr) fuzz_stderr = tmpfile();
  if (!fuzz_stdout || !fuzz_stderr) abort();
  if (size == 0 || size >= sizeof text) return 0;
  cmd = (data[0] & 2u) ? CMD_SAMPLE : (data[0] & 1u) ? CMD_DEMO : CMD_QUERY;
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0';
  argv[0] = (char *)"adasoftmax";
  argv[1] = (char *)(cmd == CMD_DEMO ? "demo" : cmd == CMD_SAMPLE ? "sample" : "query");
  for (start = 0, i = 0; i < size && argc < MAX_ARGS + 2; i++)
    if (text[i] == '\0') { /* the last byte is always a terminator */
      argv[argc++] = text + start;
      start = i + 1;
    }
  argv[argc] = NULL;

  options_default(&o);
  r = parse_options(argc, argv, cmd, &o);
  out_len = slurp(fuzz_stdout, out_buf, sizeof out_buf);
  err_len = slurp(fuzz_stderr, err_buf, sizeof err_buf);
  if (r == -1) { /* parsed: silent, and every value in range */
    if (out_len || err_len) abort();
    check_options(&o, cmd);
  } else if (r == 0) { /* --help: the usage on stdout, nothing else */
    const size_t u1 = strlen(usage_text);
    if (err_len || out_len != u1 + strlen(usage_text2) ||
        strncmp(out_buf, usage_text, u1) != 0 ||
        strcmp(out_buf + u1, usage_text2) != 0)
      abort();
  } else if (r == EXIT_INPUT) { /* one line on stderr, nothing on stdout */
    if (out_len) abort();
    check_one_line(err_buf, err_len);
  } else {
    abort();
  }
  return 0;
}
