/**
 * Rule text that outlives a sync (the appliers' memory of what is live) is kept flat.
 *
 * V8 stores a string built with `+` or a template literal as a tree of its pieces; a rule of 80
 * characters made of five pieces then costs about three times its flat size, and at 10k services
 * the appliers hold over a hundred thousand such rules. `normalize()` returns a flat copy (for the
 * ASCII text rules are made of, the same characters) and lets the pieces go.
 */

/** `text` as one flat string, equal to it. */
export function flatText(text: string): string {
  return text.normalize();
}

/** Every string of `texts`, flat. */
export function flatTexts(texts: readonly string[]): string[] {
  return texts.map(flatText);
}
