/** The rule renderers by proxy mode, for `render`, `diff`, dry-run and the API. */
import type { RuleRenderer } from "../apply/applier.ts";
import type { ProxyMode } from "../config/proxy_config.ts";

const RENDERERS = new Map<ProxyMode, RuleRenderer>();

/** Makes a backend's renderer available by its mode name (each backend module registers one). */
export function registerRenderer(mode: ProxyMode, renderer: RuleRenderer): void {
  RENDERERS.set(mode, renderer);
}

/** The renderer for a mode, or null when that backend is not built in. */
export function rendererFor(mode: ProxyMode): RuleRenderer | null {
  return RENDERERS.get(mode) ?? null;
}
