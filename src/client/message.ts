/**
 * The messages a producer sends and a consumer receives.
 */

/** A message to send. */
export interface Message {
  /** The topic; the producer must have called `publish(topic)` first. */
  readonly topic: string;
  /** The payload; a string is sent as UTF-8. */
  readonly data: Buffer | string;
  /**
   * MetaQ's message attribute: one string stored before the payload (flag bit 0), typically
   * used by consumers to filter. `''` is an attribute too; leave it out for none.
   */
  readonly attribute?: string;
  /**
   * Ordering key, read by {@link keyHashSelector}: messages with the same key go to the same
   * partition. Not sent to the broker.
   */
  readonly key?: string;
}

/** Where a message was stored. */
export interface SendResult {
  /** The id the broker assigned (64-bit; increases per broker). */
  readonly id: bigint;
  readonly topic: string;
  /** The partition it was stored in (the broker's choice when the producer sent `-1`). */
  readonly partition: number;
  /** Byte offset of the stored record in the partition log. */
  readonly offset: number;
  /** `meta://host:port` of the broker that stored it. */
  readonly brokerUrl: string;
}

/** A message delivered to a consumer's listener. */
export interface ConsumedMessage {
  /** The broker-assigned id. */
  readonly id: bigint;
  readonly topic: string;
  readonly partition: number;
  /** Byte offset of the record in the partition log. */
  readonly offset: number;
  /**
   * The payload. It is a view into the fetched block (no copy): copy it (`Buffer.from(data)`)
   * if you keep many messages around, or the whole block stays in memory.
   */
  readonly data: Buffer;
  /** The attribute, when the message has one. */
  readonly attribute?: string;
  /** The raw flag word (bit 0: has an attribute). */
  readonly flag: number;
  /** True when this delivery comes from the local recover store (an earlier delivery failed). */
  readonly recovered: boolean;
}

/**
 * Receives one message at a time. A returned promise is awaited before the next message of
 * the same partition; throwing (or rejecting) makes the consumer retry the message, then move
 * it to the recover store (see docs/client.md).
 */
export type MessageListener = (message: ConsumedMessage) => void | Promise<void>;

/**
 * Client-side filter: return `false` to skip a message (its offset still advances, the listener
 * never sees it). A filter that throws counts as `false`, as in MetaQ.
 */
export type MessageFilter = (message: ConsumedMessage) => boolean;
