/**
 * Set element messages: NEWSETELEM and DELSETELEM — keys (and, for maps, data or verdicts) of
 * a named set, or of an anonymous set created earlier in the same batch (by id). Pure.
 *
 * @module
 */
import { dataValueAttr, dataVerdictAttr, type Verdict } from "./expressions.ts";
import { nestAttr, stringAttr, u32Attr } from "./attributes.ts";
import type { NetlinkAttribute } from "./attributes.ts";
import { NFT_MSG, type NftMessage, nftType, NLM_F } from "./message.ts";

/** One element: a key and, in a map, data bytes or a verdict. */
export interface SetElement {
  /** Key bytes (concatenated fields each padded to 4 bytes). */
  readonly key: Uint8Array;
  /** Data of a data map. */
  readonly data?: Uint8Array;
  /** Verdict of a verdict map. */
  readonly verdict?: Verdict;
  /** The end of an interval (`NFT_SET_ELEM_INTERVAL_END`): the first key past it. */
  readonly intervalEnd?: true;
}

/** The set the elements belong to. */
export interface SetRef {
  /** `NFPROTO_*` of the table. */
  readonly family: number;
  /** Table name. */
  readonly table: string;
  /** Set name. */
  readonly set: string;
  /** Id of a set made in the same batch (needed for anonymous sets). */
  readonly setId?: number;
}

const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_SET_ELEM_LIST_SET_ID = 4;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_DATA = 2;
const NFTA_SET_ELEM_FLAGS = 3;
const NFT_SET_ELEM_INTERVAL_END = 1;

function elementAttrs(elements: readonly SetElement[], withData: boolean): NetlinkAttribute {
  // libnftnl numbers the nests 1, 2, 3, …; the kernel reads them in order whatever the type.
  return nestAttr(
    NFTA_SET_ELEM_LIST_ELEMENTS,
    elements.map((e, i) => {
      // As nft: an interval's end carries its flag ahead of the key.
      const attrs = e.intervalEnd === true
        ? [u32Attr(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END)]
        : [];
      attrs.push(dataValueAttr(NFTA_SET_ELEM_KEY, e.key));
      if (withData && e.data !== undefined) attrs.push(dataValueAttr(NFTA_SET_ELEM_DATA, e.data));
      if (withData && e.verdict !== undefined) {
        attrs.push(dataVerdictAttr(NFTA_SET_ELEM_DATA, e.verdict));
      }
      return nestAttr(i + 1, attrs);
    }),
  );
}

/** `add element FAMILY TABLE SET { … }`. */
export function addElements(ref: SetRef, elements: readonly SetElement[]): NftMessage {
  const attrs: NetlinkAttribute[] = [
    stringAttr(NFTA_SET_ELEM_LIST_TABLE, ref.table),
    stringAttr(NFTA_SET_ELEM_LIST_SET, ref.set),
  ];
  if (ref.setId !== undefined) attrs.push(u32Attr(NFTA_SET_ELEM_LIST_SET_ID, ref.setId));
  attrs.push(elementAttrs(elements, true));
  return {
    type: nftType(NFT_MSG.NEWSETELEM),
    flags: NLM_F.CREATE,
    family: ref.family,
    attributes: attrs,
  };
}

/** `delete element FAMILY TABLE SET { … }` (keys only). */
export function deleteElements(ref: SetRef, elements: readonly SetElement[]): NftMessage {
  return {
    type: nftType(NFT_MSG.DELSETELEM),
    flags: 0,
    family: ref.family,
    attributes: [
      stringAttr(NFTA_SET_ELEM_LIST_TABLE, ref.table),
      stringAttr(NFTA_SET_ELEM_LIST_SET, ref.set),
      elementAttrs(elements, false),
    ],
  };
}
