/**
 * The MetaQ wire codec: pure functions over Buffers, no sockets (docs/protocol.md).
 *
 * - frames.ts: the typed frames; encode.ts: one encoder per frame;
 * - frame-decoder.ts: the incremental decoder (parse-header.ts holds the token rules);
 * - transaction-key.ts / transaction-type.ts: `TX:`/`XID:` keys and the eight operations;
 * - message-data.ts / message-records.ts: attribute blocks and `value` bodies;
 * - result-codes.ts, response-bodies.ts, transaction-bodies.ts: status codes and body texts.
 */
export { LONG_MAX_OFFSET } from './frames.js';
export type {
  Frame,
  FrameType,
  GetFrame,
  LongMaxOffset,
  OffsetFrame,
  PutForm,
  PutFrame,
  QuitFrame,
  RequestFrame,
  ResponseFrame,
  ResultFrame,
  StatsFrame,
  SyncFrame,
  TransactionFrame,
  ValueFrame,
  VersionFrame,
} from './frames.js';
export {
  encodeFrame,
  encodeGet,
  encodeOffset,
  encodePut,
  encodeQuit,
  encodeResult,
  encodeResultHeader,
  encodeStats,
  encodeSync,
  encodeTransaction,
  encodeValue,
  encodeValueHeader,
  encodeVersion,
} from './encode.js';
export { FrameDecoder } from './frame-decoder.js';
export type { FrameDecoderOptions } from './frame-decoder.js';
export { parseHeader } from './parse-header.js';
export type { AcceptedFrames, HeaderLimits, ParsedHeader } from './parse-header.js';
export {
  DEFAULT_MAX_BODY_SIZE,
  DEFAULT_MAX_HEADER_LENGTH,
  DEFAULT_MAX_RECORD_DATA_LENGTH,
  DEFAULT_MAX_RESULT_BODY_SIZE,
  DEFAULT_MAX_VALUE_BODY_SIZE,
  DEFAULT_OPAQUE,
} from './limits.js';
export { INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, isDecimal, parseInt32, parseInt64, parseSafeInteger } from './numbers.js';
export { ERROR_HEADER_EXCERPT_LENGTH, InvalidRecordError, ProtocolError } from './protocol-error.js';
export type { InvalidRecordReason, ProtocolErrorDetails } from './protocol-error.js';
export { formatTransactionKey, NULL_TRANSACTION_KEY, parseTransactionKey } from './transaction-key.js';
export type { LocalTransactionKey, TransactionKey, XaTransactionKey } from './transaction-key.js';
export { isTransactionType, TransactionType } from './transaction-type.js';
export type { TransactionTypeName } from './transaction-type.js';
export { ATTRIBUTE_FLAG, decodeMessageData, encodeMessageData } from './message-data.js';
export type { EncodedMessageData, MessageData } from './message-data.js';
export { MessageRecordIterator, readMessageRecords } from './message-records.js';
export type { MessageRecord, MessageRecordOptions, MessageRecords } from './message-records.js';
export { isKnownResultCode, ResultCode, resultCodeName } from './result-codes.js';
export type { ResultCodeValue } from './result-codes.js';
export {
  CHECKSUM_FAILURE_DETAIL,
  getPartitionClosedBody,
  invalidMaxSizeBody,
  messageNotFoundBody,
  offsetBody,
  parseOffsetBody,
  parsePutResultBody,
  putFailedBody,
  putPartitionClosedDetail,
  putResultBody,
  statsBody,
  topicNotAcceptedDetail,
  topicPartitionNotFoundBody,
  wrongPartitionDetail,
} from './response-bodies.js';
export type { PutResult } from './response-bodies.js';
export {
  localTransactionNotStartedBody,
  parseRecoverResultBody,
  parseXaExceptionBody,
  prepareResultBody,
  recoverResultBody,
  timerCapacityExceededBody,
  XaCode,
  xaExceptionBody,
  xaTransactionNotStartedMessage,
} from './transaction-bodies.js';
export type { XaCodeValue, XaError } from './transaction-bodies.js';
