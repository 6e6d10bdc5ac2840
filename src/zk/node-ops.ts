/**
 * Multi-request znode operations on one library client: create with parents, recursive delete,
 * arming a watch. They loop (boundedly) over the races with other clients that ZooKeeper's
 * single-node operations leave open; session and retry handling stay in zookeeper-client.ts.
 */
import type { ZkCreateResult } from './zk-client.js';
import * as zk from './library.js';
import type { LibraryClient } from './library.js';
import type { WatchKind } from './watch-registry.js';
import { ancestorPaths, childPath } from './zk-path.js';

/** Bound on the loops that race with other clients creating or deleting the same nodes. */
export const MAX_RACE_ATTEMPTS = 5;

/** Creates a node, with missing parents (persistent, empty) when `parents`. Rejects with library exceptions. */
export async function createNode(lib: LibraryClient, path: string, data: string, ephemeral: boolean, parents: boolean): Promise<ZkCreateResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      await zk.create(lib, path, data, ephemeral);
      return 'created';
    } catch (err) {
      const code = zk.libraryCode(err);
      if (code === 'NODE_EXISTS') return 'exists';
      if (code !== 'NO_NODE' || !parents || attempt >= MAX_RACE_ATTEMPTS) throw err;
    }
    // A parent is missing (or was deleted again by someone else since the last round).
    for (const ancestor of ancestorPaths(path)) {
      try {
        await zk.create(lib, ancestor, '', false);
      } catch (err) {
        if (zk.libraryCode(err) !== 'NODE_EXISTS') throw err;
      }
    }
  }
}

/** Deletes a subtree depth-first; false when it did not exist. Loops when a child is added meanwhile. */
export async function removeTree(lib: LibraryClient, path: string): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    let children: string[];
    try {
      children = await zk.getChildren(lib, path);
    } catch (err) {
      if (zk.libraryCode(err) === 'NO_NODE') return attempt > 1;
      throw err;
    }
    for (const child of children) {
      // ZooKeeper's own /zookeeper subtree cannot be deleted.
      if (path !== '/' || child !== 'zookeeper') await removeTree(lib, childPath(path, child));
    }
    if (path === '/') return true;
    try {
      await zk.remove(lib, path);
      return true;
    } catch (err) {
      const code = zk.libraryCode(err);
      if (code === 'NO_NODE') return true;
      if (code !== 'NOT_EMPTY' || attempt >= MAX_RACE_ATTEMPTS) throw err;
    }
  }
}

/**
 * Sets one library watch for the WatchRegistry; `fired` is called at most once. Resolves true
 * when the node was created while arming a children watch on a missing node: no watch saw that
 * creation, so the listeners must be told. Rejects with a `ZookeeperError`.
 */
export async function armWatch(lib: LibraryClient, kind: WatchKind, path: string, fired: () => void): Promise<boolean> {
  let done = false;
  // Why once: a children watch may leave two library watches (children, and existence from
  // the fallback below) that can both fire.
  const watcher = (): void => {
    if (done) return;
    done = true;
    fired();
  };
  try {
    if (kind === 'data') {
      await zk.exists(lib, path, watcher); // a data watch if it exists, a creation watch if not
      return false;
    }
    let createdMeanwhile = false;
    for (let attempt = 1; ; attempt++) {
      try {
        await zk.getChildren(lib, path, watcher);
        return createdMeanwhile;
      } catch (err) {
        if (zk.libraryCode(err) !== 'NO_NODE' || attempt >= MAX_RACE_ATTEMPTS) throw err;
      }
      // No node, so no children watch: watch for its creation instead. If it exists by now, it
      // was created between the two requests: arm the children watch and report the change.
      if ((await zk.exists(lib, path, watcher)) === null) return false;
      createdMeanwhile = true;
    }
  } catch (err) {
    throw zk.toZookeeperError(err, 'watch', path);
  }
}
