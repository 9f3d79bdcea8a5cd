/**
 * Rule messages: NEWRULE (append a rule of expressions to a chain) and DELRULE without a handle
 * (`flush chain`: every rule of the chain). Pure.
 *
 * @module
 */
import { nestAttr, stringAttr } from "./attributes.ts";
import type { ChainRef } from "./chain.ts";
import { type Expression, expressionAttr } from "./expressions.ts";
import { NFT_MSG, type NftMessage, nftType, NLM_F } from "./message.ts";

const NFTA_RULE_TABLE = 1;
const NFTA_RULE_CHAIN = 2;
const NFTA_RULE_EXPRESSIONS = 4;

/** `add rule FAMILY TABLE CHAIN …`: appends a rule made of `expressions`. */
export function appendRule(ref: ChainRef, expressions: readonly Expression[]): NftMessage {
  return {
    type: nftType(NFT_MSG.NEWRULE),
    flags: NLM_F.CREATE | NLM_F.APPEND,
    family: ref.family,
    attributes: [
      stringAttr(NFTA_RULE_TABLE, ref.table),
      stringAttr(NFTA_RULE_CHAIN, ref.chain),
      nestAttr(NFTA_RULE_EXPRESSIONS, expressions.map(expressionAttr)),
    ],
  };
}

/** `flush chain FAMILY TABLE CHAIN`: deletes every rule of the chain. */
export function flushChain(ref: ChainRef): NftMessage {
  return {
    type: nftType(NFT_MSG.DELRULE),
    flags: 0,
    family: ref.family,
    attributes: [stringAttr(NFTA_RULE_TABLE, ref.table), stringAttr(NFTA_RULE_CHAIN, ref.chain)],
  };
}
