/**
 * Reads ZooKeeper from the outside, for layout tests: every znode under a path with its exact
 * data and the session that owns it when it is ephemeral.
 *
 * Uses the plain `node-zookeeper-client` library, not metaq's adapter (src/zk), so that what the
 * tests see is what any ZooKeeper client (MetaQ's Java client, zkCli) sees.
 */
import zookeeper from 'node-zookeeper-client';

/** A znode as read from ZooKeeper: its data (UTF-8) and the owner session of an ephemeral (hex). */
export interface ReadNode {
  readonly data: string;
  /** The owning session id in hex (as `ZkClient.sessionId`), `undefined` for a persistent node. */
  readonly owner: string | undefined;
}

/** Connects a plain library client; resolves once connected. */
export async function connectLibrary(connectString: string, sessionTimeoutMs = 10_000): Promise<zookeeper.Client> {
  const client = zookeeper.createClient(connectString, { sessionTimeout: sessionTimeoutMs, retries: 0 });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.close();
      reject(new Error(`no ZooKeeper session with ${connectString} within 5 s`));
    }, 5000);
    client.once('connected', () => {
      clearTimeout(timer);
      resolve();
    });
    client.connect();
  });
  return client;
}

/** The session id of a library client in hex, as {@link ReadNode.owner} shows it. */
export function librarySessionId(client: zookeeper.Client): string {
  return client.getSessionId().toString('hex');
}

function isNoNode(err: Error | zookeeper.Exception): boolean {
  return 'getCode' in err && err.getCode() === zookeeper.Exception.NO_NODE;
}

/** The names of the children of `path`; none when it does not exist. */
function childNames(client: zookeeper.Client, path: string): Promise<string[]> {
  return new Promise((resolve, reject) =>
    client.getChildren(path, (err, names) => {
      if (err === null) resolve(names);
      else if (isNoNode(err)) resolve([]);
      else reject(err);
    }),
  );
}

/** The node at `path`, or `undefined` when it does not exist. */
export function readNode(client: zookeeper.Client, path: string): Promise<ReadNode | undefined> {
  return new Promise((resolve, reject) =>
    client.getData(path, (err, data, stat) => {
      if (err === null) {
        const owner = stat.ephemeralOwner.toString('hex');
        resolve({ data: data === null || data === undefined ? '' : data.toString('utf8'), owner: /^0+$/.test(owner) ? undefined : owner });
      } else if (isNoNode(err)) resolve(undefined);
      else reject(err);
    }),
  );
}

/** Sorts by path as strings (code units), so that a tree prints and compares the same way each time. */
export function byPath<T extends readonly [string, ...unknown[]]>(entries: readonly T[]): T[] {
  return [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Every node at and below `root`, sorted by path; empty when `root` does not exist. Opens a
 * fresh connection per read (ZooKeeper may have been restarted since the last one).
 */
export async function readTree(connectString: string, root: string): Promise<Map<string, ReadNode>> {
  const client = await connectLibrary(connectString);
  try {
    const found: [string, ReadNode][] = [];
    const walk = async (path: string): Promise<void> => {
      const node = await readNode(client, path);
      if (node === undefined) return;
      found.push([path, node]);
      for (const name of (await childNames(client, path)).sort()) await walk(`${path}/${name}`);
    };
    await walk(root);
    return new Map(byPath(found));
  } finally {
    client.close();
  }
}

/** Paths and data only, in path order. */
export const dataOf = (tree: ReadonlyMap<string, ReadNode>): [string, string][] => [...tree].map(([path, node]) => [path, node.data]);

/**
 * Creates the ephemeral `path` with `data` in `client`'s session, its missing parents
 * persistent and empty (as MetaQ's `ZkUtils.createEphemeralPath` does).
 */
export async function createEphemeral(client: zookeeper.Client, path: string, data: string): Promise<void> {
  const parent = path.slice(0, path.lastIndexOf('/'));
  if (parent !== '') {
    await new Promise<void>((resolve, reject) => client.mkdirp(parent, (err) => (err === null ? resolve() : reject(err))));
  }
  await new Promise<void>((resolve, reject) =>
    client.create(path, Buffer.from(data, 'utf8'), zookeeper.CreateMode.EPHEMERAL, (err) => (err === null ? resolve() : reject(err))),
  );
}
