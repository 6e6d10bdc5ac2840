/**
 * Which rows of `pg_prepared_xacts` are this transaction manager's (transactions.md §5.2, §5.6).
 * Pure, so it can be unit-tested without a server.
 */
import { belongsToNode, METAQ_TM_FORMAT_ID, pgGidOf, parsePgGid, type Xid } from '../xid.js';

/**
 * The XIDs among prepared-transaction gids that recovery may touch: pgjdbc-format gids with
 * formatId {@link METAQ_TM_FORMAT_ID} that encode back to exactly the same gid, and — when
 * `nodeIds` is given — made by one of those nodes.
 *
 * Why the round trip: `parsePgGid` decodes base64 leniently, so a foreign gid that merely looks
 * similar (`1297175635_foo_bar`) would yield an XID whose own gid differs; `COMMIT PREPARED` of
 * that XID could never reach the transaction. Such gids are left to whoever made them.
 *
 * @param gids - `pg_prepared_xacts.gid` values.
 * @param nodeIds - 8-byte node ids (see `nodeIdOf`); undefined = every node's XIDs.
 */
export function ownXidsOf(gids: Iterable<string>, nodeIds?: readonly Buffer[]): Xid[] {
  const xids: Xid[] = [];
  for (const gid of gids) {
    const xid = parsePgGid(gid);
    if (xid === undefined || xid.formatId !== METAQ_TM_FORMAT_ID) continue;
    if (!roundTrips(xid, gid)) continue;
    if (nodeIds !== undefined && !nodeIds.some((nodeId) => belongsToNode(xid, nodeId))) continue;
    xids.push(xid);
  }
  return xids;
}

function roundTrips(xid: Xid, gid: string): boolean {
  try {
    return pgGidOf(xid) === gid;
  } catch {
    return false;
  }
}
