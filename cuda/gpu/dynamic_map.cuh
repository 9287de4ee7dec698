// bitsandbytes' signed dynamic map (create_dynamic_map(signed=True), float32),
// the 8-bit code of the double quantization, as a kernel argument. The values
// are those of cuda/cpu/nf4.cpp; gpu-check compares the codes both builds make.
#pragma once

#include "../cpu/dynamic_map_table.h"

// The 256 entries; the lookup's thresholds are 0.5 * (code[i] + code[i+1]) in fp32.
struct DynamicMap {
  float code[256];
};

static inline DynamicMap dynamic_map() {
  DynamicMap map;
  for (int i = 0; i < 127; i++) {
    map.code[i] = -kDynamicPositive[126 - i];
    map.code[128 + i] = kDynamicPositive[i];
  }
  map.code[127] = 0.0f;
  map.code[255] = 1.0f;
  return map;
}
