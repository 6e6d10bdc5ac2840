/**
 * Consumer groups in ZooKeeper: membership and rebalancing (group-member.ts), MetaQ's
 * load-balance strategies (strategies.ts).
 */
export { joinConsumerGroup, type GroupRetryOptions, type JoinConsumerGroupOptions, type RebalanceStats, type ZkGroupMembership } from './group-member.js';
export { assignmentFunction, consistentHashAssignment, rangeAssignment, sortJavaStrings } from './strategies.js';
