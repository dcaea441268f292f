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
