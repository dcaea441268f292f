/**
 * Helpers shared by the test files (not a test file itself: the runner picks *.test.ts only).
 */

/**
 * A skip reason for a test that needs a program outside Node (Jupyter, Chromium), or false.
 * Under CI=true nothing is skipped: a missing program must fail the run, not hide it.
 */
export function skipUnlessCI(reason: string | false): string | false {
  return process.env.CI === "true" ? false : reason;
}

/** max |a - b| / max(1, max |b|): relative to the values' scale, robust to near-zero entries. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}
