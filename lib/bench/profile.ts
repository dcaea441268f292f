/**
 * Where a training step's time goes, by tfjs kernel: every kernel registered for the active
 * backend is wrapped with a timer (wasm kernels run synchronously, so wall time per call is
 * the kernel's time). Used by `npm run bench -- --profile` to show what to speed up next.
 */
import * as tf from "@tensorflow/tfjs";

/** Milliseconds and calls per kernel name, gathered while profiling is on. */
export interface KernelProfile {
  kernel: string;
  ms: number;
  calls: number;
  share: number;
}

/**
 * Wraps every kernel of `backendName` with a timer; returns a function that unwraps them and
 * reports per-kernel totals, largest first.
 */
export function profileKernels(backendName: string): () => KernelProfile[] {
  const totals = new Map<string, { ms: number; calls: number }>();
  const originals = tf.getKernelsForBackend(backendName);
  for (const config of originals) {
    const fn = config.kernelFunc;
    const timed: tf.KernelConfig = {
      ...config,
      kernelFunc: (args) => {
        const t0 = performance.now();
        try {
          return fn(args);
        } finally {
          const t = totals.get(config.kernelName) ?? { ms: 0, calls: 0 };
          t.ms += performance.now() - t0;
          t.calls++;
          totals.set(config.kernelName, t);
        }
      },
    };
    // The spread copies own symbol keys too, so the "already ours" markers of lib/kernels and
    // lib/engine/onednn survive the wrap.
    tf.unregisterKernel(config.kernelName, backendName);
    tf.registerKernel(timed);
  }
  return () => {
    for (const config of originals) {
      tf.unregisterKernel(config.kernelName, backendName);
      tf.registerKernel(config);
    }
    const sum = [...totals.values()].reduce((a, t) => a + t.ms, 0);
    return [...totals.entries()]
      .map(([kernel, t]) => ({ kernel, ms: Math.round(t.ms * 10) / 10, calls: t.calls, share: Math.round((t.ms / sum) * 1000) / 10 }))
      .sort((a, b) => b.ms - a.ms);
  };
}
