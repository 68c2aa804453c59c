// Run-time CPU feature checks for the kernels' CPU fast paths (host only;
// the AIE build never includes this).
#ifndef NPUK_KERNELS_COMMON_CPU_FEATURES_H_
#define NPUK_KERNELS_COMMON_CPU_FEATURES_H_

namespace npuk::cpu {

// True when the CPU and OS support AVX2. Safe from static initialisers.
inline bool HasAvx2() {
#if defined(__x86_64__) || defined(__i386__)
  // __builtin_cpu_init makes this safe even from static initialisers;
  // libgcc's check includes the OS enabling the AVX state (XGETBV).
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
#else
  return false;
#endif
}

// True when the CPU and OS support the AVX-512 subsets the attention
// kernel's AVX-512 path uses (F, BW, VL and VNNI's vpdpbusd/vpdpwssd).
inline bool HasAvx512Vnni() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0 &&
           __builtin_cpu_supports("avx512bw") != 0 &&
           __builtin_cpu_supports("avx512vl") != 0 &&
           __builtin_cpu_supports("avx512vnni") != 0;
  }();
  return has;
#else
  return false;
#endif
}

// True when the CPU and OS support the AVX-512 subsets the mel kernels'
// AVX-512 path uses (F, and CD's vplzcntq).
inline bool HasAvx512Mel() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0 &&
           __builtin_cpu_supports("avx512cd") != 0;
  }();
  return has;
#else
  return false;
#endif
}

// "avx2" or "portable": the path the kernels' CPU batch functions take here
// (the mel family takes AVX-512 beyond that where it can: MelSimdLevel()).
inline const char* SimdLevel() { return HasAvx2() ? "avx2" : "portable"; }

}  // namespace npuk::cpu

#endif  // NPUK_KERNELS_COMMON_CPU_FEATURES_H_
