/**
 * Test helper: batches compared for meaning, byte for byte. Two things nft sends carry none and
 * are normalised away:
 * - the `NFTA_*_SET_ID` nft adds from its own cache when it names a set that exists (the kernel
 *   looks an id up only when the name is not found, which for an existing set never happens);
 * - the numbering of anonymous sets' ids (`__map%d` made in the batch): ids are renumbered 1, 2, …
 *   in order of appearance, where they do matter (the rule finds its set by id).
 *
 * @module
 */
import {
  attributesSize,
  type NetlinkAttribute,
  parseAttributes,
  u32Attr,
  writeAttributes,
} from "./attributes.ts";

interface Tree {
  readonly type: number;
  readonly nested: boolean;
  readonly payload: Uint8Array;
  readonly children: readonly Tree[];
}

function tree(bytes: Uint8Array): Tree[] {
  return parseAttributes(bytes).map((a) => ({ ...a, children: a.nested ? tree(a.payload) : [] }));
}

function text(t: Tree | undefined): string {
  return t === undefined ? "" : new TextDecoder().decode(t.payload).replace(/\0+$/, "");
}

function u32(t: Tree): number {
  return new DataView(t.payload.buffer, t.payload.byteOffset, 4).getUint32(0, false);
}

function toAttrs(ts: readonly Tree[]): NetlinkAttribute[] {
  return ts.map((t) =>
    t.nested ? { type: t.type, nested: toAttrs(t.children) } : { type: t.type, bytes: t.payload }
  );
}

/** One message: its nf_tables message number and its body (nfgenmsg + attributes). */
export interface BatchMessage {
  /** `nlmsg_type & 0xff`. */
  readonly msg: number;
  /** Everything after `nlmsghdr`. */
  readonly body: Uint8Array;
}

/** The messages of a batch as hex, normalised as the module says. */
export function normalizeBatch(messages: readonly BatchMessage[]): string[] {
  const ids = new Map<number, number>();
  const remap = (t: Tree): Tree => {
    const old = u32(t);
    if (!ids.has(old)) ids.set(old, ids.size + 1);
    return { ...t, payload: (u32Attr(0, ids.get(old) as number) as { bytes: Uint8Array }).bytes };
  };
  const anonymous = (name: string) => name.startsWith("__");
  return messages.map(({ msg, body }) => {
    let attrs: readonly Tree[] = tree(body.subarray(4));
    const setName = text(attrs.find((a) => a.type === 2));
    if (msg === 9) {
      attrs = attrs.map((a) => a.type === 10 && anonymous(setName) ? remap(a) : a);
    } else if (msg === 12 || msg === 14) {
      attrs = anonymous(setName)
        ? attrs.map((a) => (a.type === 4 ? remap(a) : a))
        : attrs.filter((a) => a.type !== 4);
    } else if (msg === 6) {
      attrs = attrs.map((a) =>
        a.type !== 4 ? a : {
          ...a,
          children: a.children.map((elem) => {
            const name = text(elem.children.find((c) => c.type === 1));
            const data = elem.children.find((c) => c.type === 2);
            if (data === undefined || (name !== "lookup" && name !== "dynset")) return elem;
            const idType = name === "lookup" ? 4 : 2;
            const set = text(data.children.find((c) => c.type === 1));
            const kids = anonymous(set)
              ? data.children.map((c) => (c.type === idType ? remap(c) : c))
              : data.children.filter((c) => c.type !== idType);
            return {
              ...elem,
              children: elem.children.map((c) => c === data ? { ...data, children: kids } : c),
            };
          }),
        }
      );
    }
    const encoded = toAttrs(attrs);
    const out = new Uint8Array(4 + attributesSize(encoded));
    out.set(body.subarray(0, 4));
    writeAttributes(new DataView(out.buffer), 4, encoded);
    return `${msg}:${Array.from(out, (x) => x.toString(16).padStart(2, "0")).join("")}`;
  });
}
