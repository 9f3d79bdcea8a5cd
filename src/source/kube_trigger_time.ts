/** EndpointSlice change trigger times, for the network programming latency metric (pure). */
import type { EndpointSlice } from "../model/endpoint_slice.ts";
import { LAST_CHANGE_TRIGGER_TIME_ANNOTATION } from "../model/endpoint_slice.ts";

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Milliseconds since the epoch of an RFC 3339 time such as `2026-11-26T12:00:00.123456Z`, or null
 * when the text is not one (fractions past milliseconds are dropped).
 */
export function parseRFC3339(text: string): number | null {
  const m = RFC3339.exec(text.trim());
  if (m === null) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return null;
  }
  const millis = Number(((m[7] ?? "") + "000").slice(0, 3));
  let ms = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  if (m[9] !== undefined) {
    const offset = (Number(m[10]) * 60 + Number(m[11])) * 60_000;
    ms += m[9] === "+" ? -offset : offset;
  }
  return Number.isFinite(ms) ? ms : null;
}

/** The `endpoints.kubernetes.io/last-change-trigger-time` of a slice in ms, or null. */
export function sliceTriggerTime(slice: EndpointSlice): number | null {
  const text = slice.metadata.annotations?.[LAST_CHANGE_TRIGGER_TIME_ANNOTATION];
  return text === undefined ? null : parseRFC3339(text);
}
