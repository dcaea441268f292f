/**
 * Training kernels for backends that lack them (wasm). Placeholder until the CPU-training
 * work lands: registers nothing and reports one thread.
 */

/** Registers missing gradient kernels for the active backend; returns the thread count. */
export function registerTrainingKernels(): number {
  return 1;
}
