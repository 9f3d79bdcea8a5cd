/**
 * Quoting for `-m comment --comment` text. Names reaching here were validated by the model, but
 * the quoting is defensive anyway: nothing in a name can end the quoted word, start a new rule
 * line or exceed the kernel's 256-byte comment limit.
 */

const MAX_COMMENT_BYTES = 255;
// Printable ASCII without `"`, `'` and `\`.
const SAFE = /^[\x20\x21\x23-\x26\x28-\x5b\x5d-\x7e]*$/;

/** `text` as one double-quoted iptables-restore word that cannot break out of its rule. */
export function quoteComment(text: string): string {
  if (text.length <= MAX_COMMENT_BYTES && SAFE.test(text)) return `"${text}"`;
  let safe = "";
  for (const ch of text) {
    const code = ch.codePointAt(0) as number;
    // Printable ASCII only; quote, backslash and apostrophe would change the tokenizer's view.
    const ok = code >= 0x20 && code <= 0x7e && ch !== '"' && ch !== "\\" && ch !== "'";
    safe += ok ? ch : "_";
    if (safe.length >= MAX_COMMENT_BYTES) break;
  }
  return `"${safe}"`;
}
