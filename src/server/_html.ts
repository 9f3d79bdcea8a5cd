/** HTML escaping for the server-rendered pages (private to src/server). */

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

/** A piece of HTML that is already safe to emit. */
export class SafeHtml {
  /** The markup. */
  readonly html: string;
  /** Wraps markup known to be safe. */
  constructor(html: string) {
    this.html = html;
  }
  /** The markup. */
  toString(): string {
    return this.html;
  }
}

/** A value a template may interpolate: escaped unless it is {@link SafeHtml}; arrays are joined. */
export type HtmlValue = SafeHtml | string | number | boolean | null | undefined | HtmlValue[];

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return "";
  if (value instanceof SafeHtml) return value.html;
  if (Array.isArray(value)) return value.map(render).join("");
  return escapeHtml(String(value));
}

/** Tagged template that escapes every interpolated value (except nested `markup` results). */
export function markup(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? "";
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? "");
  });
  return new SafeHtml(out);
}

/** Marks constant markup (never user data) as safe, e.g. a stylesheet. */
export function trustedHtml(text: string): SafeHtml {
  return new SafeHtml(text);
}
