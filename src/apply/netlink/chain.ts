/**
 * Chain messages: NEWCHAIN and DELCHAIN for regular chains (base chains come with the first
 * load, through `nft -f`). Pure.
 *
 * @module
 */
import { stringAttr } from "./attributes.ts";
import { NFT_MSG, type NftMessage, nftType, NLM_F } from "./message.ts";

const NFTA_CHAIN_TABLE = 1;
const NFTA_CHAIN_NAME = 3;

/** Where a chain lives: table family (`NFPROTO_*`), table and chain name. */
export interface ChainRef {
  /** `NFPROTO_*` of the table. */
  readonly family: number;
  /** Table name. */
  readonly table: string;
  /** Chain name. */
  readonly chain: string;
}

/** `add chain FAMILY TABLE NAME` (no error when it exists). */
export function newChain(ref: ChainRef): NftMessage {
  return {
    type: nftType(NFT_MSG.NEWCHAIN),
    flags: NLM_F.CREATE,
    family: ref.family,
    attributes: [stringAttr(NFTA_CHAIN_TABLE, ref.table), stringAttr(NFTA_CHAIN_NAME, ref.chain)],
  };
}

/** `delete chain FAMILY TABLE NAME` (the chain must be empty and unreferenced). */
export function deleteChain(ref: ChainRef): NftMessage {
  return {
    type: nftType(NFT_MSG.DELCHAIN),
    flags: 0,
    family: ref.family,
    attributes: [stringAttr(NFTA_CHAIN_TABLE, ref.table), stringAttr(NFTA_CHAIN_NAME, ref.chain)],
  };
}
