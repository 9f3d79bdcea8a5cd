/**
 * nf_tables rule expressions: typed values and their netlink encoding, attribute for attribute as
 * libnftnl writes them (the order nft sends, so the bytes match `nft --debug=mnl`). Only the
 * expressions kproxy's rules use. Pure.
 *
 * @module
 */
import { bytesAttr, nestAttr, type NetlinkAttribute, stringAttr, u32Attr } from "./attributes.ts";

/** `NFT_REG_VERDICT`, `NFT_REG_1`…: registers as nft numbers them (`NFT_REG32_00` is 8). */
export type Register = number;

/** `enum nft_payload_bases`. */
export const PAYLOAD_BASE = Object.freeze({ LINK: 0, NETWORK: 1, TRANSPORT: 2 });
/** `enum nft_cmp_ops`. */
export const CMP_OP = Object.freeze({ EQ: 0, NEQ: 1, LT: 2, LTE: 3, GT: 4, GTE: 5 });
/** `enum nft_meta_keys` (the ones kproxy reads). */
export const META_KEY = Object.freeze({ MARK: 3, IIFNAME: 6, OIFNAME: 7, L4PROTO: 16 });
/** `enum nft_verdicts` (as unsigned 32-bit numbers). */
export const VERDICT = Object.freeze({
  DROP: 0,
  ACCEPT: 1,
  CONTINUE: 0xffffffff,
  BREAK: 0xfffffffe,
  JUMP: 0xfffffffd,
  GOTO: 0xfffffffc,
  RETURN: 0xfffffffb,
});
/** `enum nft_dynset_ops`. */
export const DYNSET_OP = Object.freeze({ ADD: 0, UPDATE: 1, DELETE: 2 });
/** `NFT_LOOKUP_F_INV`. */
export const LOOKUP_F_INV = 1;
/** `enum nft_ng_types`. */
export const NUMGEN_TYPE = Object.freeze({ INCREMENTAL: 0, RANDOM: 1 });
/** `enum nft_nat_types`. */
export const NAT_TYPE = Object.freeze({ SNAT: 0, DNAT: 1 });
/** `NF_NAT_RANGE_*` flags. */
export const NAT_RANGE = Object.freeze({ MAP_IPS: 1, PROTO_SPECIFIED: 2, PROTO_RANDOM_FULLY: 16 });
/** `enum nft_fib_result`. */
export const FIB_RESULT = Object.freeze({ OIF: 1, OIFNAME: 2, ADDRTYPE: 3 });
/** `enum nft_fib_flags`. */
export const FIB_FLAG = Object.freeze({ SADDR: 1, DADDR: 2, MARK: 4, IIF: 8, OIF: 16 });

/** A verdict: a code and, for jump and goto, the chain. */
export interface Verdict {
  /** One of {@link VERDICT}. */
  readonly code: number;
  /** Target chain of a jump or goto. */
  readonly chain?: string;
}

/** One expression of a rule. */
export type Expression =
  | {
    readonly kind: "payload";
    readonly dreg: Register;
    readonly base: number;
    readonly offset: number;
    readonly len: number;
  }
  | {
    readonly kind: "cmp";
    readonly sreg: Register;
    readonly op: number;
    readonly data: Uint8Array;
  }
  | { readonly kind: "meta"; readonly key: number; readonly dreg: Register }
  | { readonly kind: "immediate"; readonly dreg: Register; readonly data: Uint8Array }
  | { readonly kind: "verdict"; readonly verdict: Verdict }
  | {
    readonly kind: "bitwise";
    readonly sreg: Register;
    readonly dreg: Register;
    readonly mask: Uint8Array;
    readonly xor: Uint8Array;
  }
  | {
    readonly kind: "lookup";
    readonly set: string;
    readonly sreg: Register;
    readonly dreg?: Register;
    readonly setId?: number;
    readonly inverted?: boolean;
  }
  | {
    readonly kind: "dynset";
    readonly set: string;
    readonly op: number;
    readonly sregKey: Register;
    readonly setId?: number;
  }
  | {
    readonly kind: "numgen";
    readonly dreg: Register;
    readonly modulus: number;
    readonly type: number;
    readonly offset: number;
  }
  | {
    readonly kind: "nat";
    readonly type: number;
    readonly family: number;
    readonly regAddrMin: Register;
    readonly regProtoMin?: Register;
    readonly flags?: number;
  }
  | {
    readonly kind: "fib";
    readonly dreg: Register;
    readonly result: number;
    readonly flags: number;
  };

const NFTA_LIST_ELEM = 1;
const NFTA_EXPR_NAME = 1;
const NFTA_EXPR_DATA = 2;
const NFTA_DATA_VALUE = 1;
const NFTA_DATA_VERDICT = 2;
const NFTA_VERDICT_CODE = 1;
const NFTA_VERDICT_CHAIN = 2;

/** `NFTA_DATA_VALUE` holding `bytes`, nested in attribute `type`. */
export function dataValueAttr(type: number, bytes: Uint8Array): NetlinkAttribute {
  return nestAttr(type, [bytesAttr(NFTA_DATA_VALUE, bytes)]);
}

/** `NFTA_DATA_VERDICT` holding `verdict`, nested in attribute `type`. */
export function dataVerdictAttr(type: number, verdict: Verdict): NetlinkAttribute {
  const inner = [u32Attr(NFTA_VERDICT_CODE, verdict.code)];
  if (verdict.chain !== undefined) inner.push(stringAttr(NFTA_VERDICT_CHAIN, verdict.chain));
  return nestAttr(type, [nestAttr(NFTA_DATA_VERDICT, inner)]);
}

function expr(name: string, data: NetlinkAttribute[]): NetlinkAttribute {
  return nestAttr(NFTA_LIST_ELEM, [
    stringAttr(NFTA_EXPR_NAME, name),
    nestAttr(NFTA_EXPR_DATA, data),
  ]);
}

/** One expression as an `NFTA_LIST_ELEM` of `NFTA_RULE_EXPRESSIONS`. */
export function expressionAttr(e: Expression): NetlinkAttribute {
  switch (e.kind) {
    case "payload":
      // NFTA_PAYLOAD_DREG, _BASE, _OFFSET, _LEN
      return expr("payload", [
        u32Attr(1, e.dreg),
        u32Attr(2, e.base),
        u32Attr(3, e.offset),
        u32Attr(4, e.len),
      ]);
    case "cmp":
      // NFTA_CMP_SREG, _OP, _DATA
      return expr("cmp", [u32Attr(1, e.sreg), u32Attr(2, e.op), dataValueAttr(3, e.data)]);
    case "meta":
      // NFTA_META_KEY, _DREG
      return expr("meta", [u32Attr(2, e.key), u32Attr(1, e.dreg)]);
    case "immediate":
      // NFTA_IMMEDIATE_DREG, _DATA
      return expr("immediate", [u32Attr(1, e.dreg), dataValueAttr(2, e.data)]);
    case "verdict":
      return expr("immediate", [u32Attr(1, 0), dataVerdictAttr(2, e.verdict)]);
    case "bitwise":
      // NFTA_BITWISE_SREG, _DREG, _LEN, _MASK, _XOR
      return expr("bitwise", [
        u32Attr(1, e.sreg),
        u32Attr(2, e.dreg),
        u32Attr(3, e.mask.length),
        dataValueAttr(4, e.mask),
        dataValueAttr(5, e.xor),
      ]);
    case "lookup": {
      // NFTA_LOOKUP_SREG, _DREG, _SET, _SET_ID, _FLAGS
      const attrs = [u32Attr(2, e.sreg)];
      if (e.dreg !== undefined) attrs.push(u32Attr(3, e.dreg));
      attrs.push(stringAttr(1, e.set));
      if (e.setId !== undefined) attrs.push(u32Attr(4, e.setId));
      if (e.inverted === true) attrs.push(u32Attr(5, LOOKUP_F_INV));
      return expr("lookup", attrs);
    }
    case "dynset": {
      // NFTA_DYNSET_SREG_KEY, _OP, _SET_NAME, _SET_ID
      const attrs = [u32Attr(4, e.sregKey), u32Attr(3, e.op), stringAttr(1, e.set)];
      if (e.setId !== undefined) attrs.push(u32Attr(2, e.setId));
      return expr("dynset", attrs);
    }
    case "numgen":
      // NFTA_NG_DREG, _MODULUS, _TYPE, _OFFSET
      return expr("numgen", [
        u32Attr(1, e.dreg),
        u32Attr(2, e.modulus),
        u32Attr(3, e.type),
        u32Attr(4, e.offset),
      ]);
    case "nat": {
      // NFTA_NAT_TYPE, _FAMILY, _REG_ADDR_MIN, _REG_PROTO_MIN, _FLAGS
      const attrs = [u32Attr(1, e.type), u32Attr(2, e.family), u32Attr(3, e.regAddrMin)];
      if (e.regProtoMin !== undefined) attrs.push(u32Attr(5, e.regProtoMin));
      if (e.flags !== undefined) attrs.push(u32Attr(7, e.flags));
      return expr("nat", attrs);
    }
    case "fib":
      // NFTA_FIB_FLAGS, _RESULT, _DREG
      return expr("fib", [u32Attr(3, e.flags), u32Attr(2, e.result), u32Attr(1, e.dreg)]);
  }
}
