/**
 * A server-side consumer filter (docs/configuration.md, "Server-side consumer filters"): the
 * broker calls it for every message a `get` by the configured group would return and sends
 * only the messages it accepts. Used by examples/server-filter.ts:
 *
 *   [topic=orders]
 *   group.even-orders=filters/even-orders.mjs
 *
 * Plain JavaScript on purpose: the broker imports it at run time, both from the built `dist/`
 * (plain Node.js) and under tsx.
 *
 * The producer puts the order number in the message attribute; this group only wants the even
 * ones. Messages without a numeric attribute are rejected.
 *
 * Keep a filter fast, synchronous and free of side effects: it runs on the broker's event loop
 * for every message it is shown, and may be shown a message twice. Throwing, returning a
 * non-boolean or a Promise all count as "reject".
 *
 * @param {string} group - the consumer group asking (one module may serve several groups)
 * @param {{ id: bigint, topic: string, partition: number, offset: number, data: Buffer, attribute?: string, flag: number }} message
 * @returns {boolean} true to send the message to the group
 */
export default function evenOrders(group, message) {
  if (message.attribute === undefined) return false;
  const order = Number(message.attribute);
  return Number.isInteger(order) && order % 2 === 0;
}
