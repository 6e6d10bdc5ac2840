/**
 * metaq's public client API. The producer and consumer arrive with the protocol stage; for now
 * this exports the error taxonomy and the message-id and record helpers they share.
 */
export * from './common/errors.js';
export { decodeMessageId, type MessageIdParts } from './store/message-id.js';
export { messageChecksum } from './store/record.js';
