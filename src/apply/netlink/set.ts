/**
 * Set messages: NEWSET (a named set or map, or an anonymous one a rule binds by id) and DELSET.
 * Pure: the caller gives the kernel types, lengths and flags; {@link setUserdata} writes the
 * small TLV blob nft keeps with a set so that `nft list` prints its keys right.
 *
 * @module
 */
import { bytesAttr, nestAttr, stringAttr, u32Attr, u64Attr } from "./attributes.ts";
import type { NetlinkAttribute } from "./attributes.ts";
import { NFT_MSG, type NftMessage, nftType, NLM_F } from "./message.ts";

/** `enum nft_set_flags`. */
export const SET_FLAG = Object.freeze({
  ANONYMOUS: 0x1,
  CONSTANT: 0x2,
  INTERVAL: 0x4,
  MAP: 0x8,
  TIMEOUT: 0x10,
  EVAL: 0x20,
  OBJECT: 0x40,
  CONCAT: 0x80,
});

/** nft's byte orders, as kept in a set's userdata. */
export const BYTEORDER = Object.freeze({ INVALID: 0, HOST: 1, BIG_ENDIAN: 2 });

/** A set or map to create. */
export interface SetDefinition {
  /** `NFPROTO_*` of the table. */
  readonly family: number;
  /** Table name. */
  readonly table: string;
  /** Set name (`__set%d` / `__map%d` for anonymous ones: the kernel numbers them). */
  readonly name: string;
  /** {@link SET_FLAG} bits. */
  readonly flags: number;
  /** nft datatype id of the key (`ipv4_addr` 7, concatenations combined). */
  readonly keyType: number;
  /** Key length in bytes (each concatenated field padded to 4). */
  readonly keyLen: number;
  /** Datatype id of the data, for maps (`verdict` is 0xffffff00). */
  readonly dataType?: number;
  /** Data length, for maps. */
  readonly dataLen?: number;
  /** Default element timeout, ms. */
  readonly timeoutMs?: bigint;
  /** Transaction-local id rules use to bind the set in the same batch. */
  readonly id: number;
  /** Number of elements (nft gives it for anonymous sets). */
  readonly size?: number;
  /** nft's userdata blob ({@link setUserdata}). */
  readonly userdata: Uint8Array;
}

const NFTA_SET_TABLE = 1;
const NFTA_SET_NAME = 2;
const NFTA_SET_FLAGS = 3;
const NFTA_SET_KEY_TYPE = 4;
const NFTA_SET_KEY_LEN = 5;
const NFTA_SET_DATA_TYPE = 6;
const NFTA_SET_DATA_LEN = 7;
const NFTA_SET_DESC = 9;
const NFTA_SET_ID = 10;
const NFTA_SET_TIMEOUT = 11;
const NFTA_SET_USERDATA = 13;
const NFTA_SET_DESC_SIZE = 1;

/** `add set|map …` (or an anonymous set). */
export function newSet(def: SetDefinition): NftMessage {
  const attrs: NetlinkAttribute[] = [
    stringAttr(NFTA_SET_TABLE, def.table),
    stringAttr(NFTA_SET_NAME, def.name),
    u32Attr(NFTA_SET_FLAGS, def.flags),
    u32Attr(NFTA_SET_KEY_TYPE, def.keyType),
    u32Attr(NFTA_SET_KEY_LEN, def.keyLen),
  ];
  if (def.dataType !== undefined) attrs.push(u32Attr(NFTA_SET_DATA_TYPE, def.dataType));
  if (def.dataLen !== undefined) attrs.push(u32Attr(NFTA_SET_DATA_LEN, def.dataLen));
  attrs.push(u32Attr(NFTA_SET_ID, def.id));
  if (def.timeoutMs !== undefined) attrs.push(u64Attr(NFTA_SET_TIMEOUT, def.timeoutMs));
  if (def.size !== undefined) {
    attrs.push(nestAttr(NFTA_SET_DESC, [u32Attr(NFTA_SET_DESC_SIZE, def.size)]));
  }
  attrs.push(bytesAttr(NFTA_SET_USERDATA, def.userdata));
  return {
    type: nftType(NFT_MSG.NEWSET),
    flags: NLM_F.CREATE,
    family: def.family,
    attributes: attrs,
  };
}

/** `delete set|map FAMILY TABLE NAME` (it must not be referenced by a rule). */
export function deleteSet(family: number, table: string, name: string): NftMessage {
  return {
    type: nftType(NFT_MSG.DELSET),
    flags: 0,
    family,
    attributes: [stringAttr(NFTA_SET_TABLE, table), stringAttr(NFTA_SET_NAME, name)],
  };
}

/** What nft records about a set's byte orders (`NFTNL_UDATA_SET_*`). */
export interface SetUserdata {
  /** Byte order of the key. */
  readonly keyByteorder: number;
  /** Byte order of the data, for maps (written even when INVALID). */
  readonly dataByteorder?: number;
  /** Whether the data is an interval (nft writes 0 for maps). */
  readonly dataInterval?: boolean;
}

/** The userdata TLVs: type (u8) · length (u8) · value (host-endian u32). */
export function setUserdata(u: SetUserdata): Uint8Array {
  const items: Array<[number, number]> = [[0, u.keyByteorder]];
  if (u.dataByteorder !== undefined) items.push([1, u.dataByteorder]);
  if (u.dataInterval !== undefined) items.push([6, u.dataInterval ? 1 : 0]);
  const out = new Uint8Array(items.length * 6);
  const view = new DataView(out.buffer);
  items.forEach(([type, value], i) => {
    view.setUint8(i * 6, type);
    view.setUint8(i * 6 + 1, 4);
    view.setUint32(i * 6 + 2, value, true);
  });
  return out;
}
