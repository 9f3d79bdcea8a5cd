/**
 * Drops the one Node.js deprecation warning (DEP0040, the `punycode` module) that
 * @kubernetes/client-node's dependencies (node-fetch → whatwg-url → tr46) print on every start;
 * every other warning still prints. Import before `@kubernetes/client-node` (side effect only).
 *
 * @module
 */
import process from "node:process";

const PUNYCODE_DEPRECATION = "DEP0040";
const original = process.emitWarning;

process.emitWarning = function (warning: string | Error, ...rest: unknown[]): void {
  const options = rest[0];
  const code = typeof options === "object" && options !== null
    ? (options as { code?: unknown }).code
    : rest[1];
  if (code === PUNYCODE_DEPRECATION) return;
  (original as (...args: unknown[]) => void).call(process, warning, ...rest);
} as typeof process.emitWarning;
