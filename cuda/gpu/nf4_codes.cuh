// The NF4 code table as a kernel argument: the host copies cuda/cpu/nf4_table.h
// (the one definition of bitsandbytes' values) into it, so both builds share it.
#pragma once

#include "../cpu/nf4_table.h"

struct Nf4Codes {
  float code[16];
  float mid[15];  // (code[i] + code[i+1]) / 2 in fp32: the quantizer's thresholds
};

static inline Nf4Codes nf4_codes() {
  Nf4Codes t;
  for (int i = 0; i < 16; i++) t.code[i] = kNf4Code[i];
  for (int i = 0; i < 15; i++) t.mid[i] = (kNf4Code[i] + kNf4Code[i + 1]) / 2.0f;
  return t;
}
