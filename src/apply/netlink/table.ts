/**
 * Table messages: NEWTABLE and DELTABLE. Pure: names in, messages out.
 *
 * @module
 */
import { stringAttr } from "./attributes.ts";
import { NFT_MSG, type NftMessage, nftType, NLM_F } from "./message.ts";

const NFTA_TABLE_NAME = 1;

/** `add table FAMILY NAME` (no error when it exists). */
export function newTable(family: number, name: string): NftMessage {
  return {
    type: nftType(NFT_MSG.NEWTABLE),
    flags: NLM_F.CREATE,
    family,
    attributes: [stringAttr(NFTA_TABLE_NAME, name)],
  };
}

/** `delete table FAMILY NAME`. */
export function deleteTable(family: number, name: string): NftMessage {
  return {
    type: nftType(NFT_MSG.DELTABLE),
    flags: 0,
    family,
    attributes: [stringAttr(NFTA_TABLE_NAME, name)],
  };
}
