/**
 * MetaQ's load-balance strategies: the range formula of DefaultLoadBalanceStrategy and the
 * ketama ring of ConsisHashStrategy, computed here independently from the reference (§4), plus
 * the properties every member relies on (a disjoint cover of the partitions).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { consistentHashAssignment, rangeAssignment, sortJavaStrings } from '../../src/client/zk/group/strategies.js';

/** `<b>-<p>` for brokers 0..brokers-1 and partitions 0..perBroker-1. */
function partitionNames(brokers: number, perBroker: number): string[] {
  const names: string[] = [];
  for (let b = 0; b < brokers; b++) for (let p = 0; p < perBroker; p++) names.push(`${b}-${p}`);
  return names;
}

function members(group: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${group}_host-${i}-pid-${1000 + i}`);
}

/** Checks that the shares of all members are disjoint and cover every partition. */
function assertDisjointCover(shares: Map<string, string[]>, partitions: readonly string[]): void {
  const seen = new Map<string, string>();
  for (const [member, share] of shares) {
    for (const name of share) {
      assert.equal(seen.get(name), undefined, `${name} assigned to ${seen.get(name)} and ${member}`);
      seen.set(name, member);
    }
  }
  assert.deepEqual([...seen.keys()].sort(), [...new Set(partitions)].sort());
}

describe('rangeAssignment (MetaQ DefaultLoadBalanceStrategy)', () => {
  it('follows per = P div C, extra = P mod C, start = per·i + min(i, extra)', () => {
    const parts = ['0-0', '0-1', '0-2', '0-3', '0-4', '0-5', '0-6', '0-7', '0-8', '0-9', '1-0', '1-1']; // 12, sorted as strings
    const group = ['g_a', 'g_b', 'g_c', 'g_d', 'g_e']; // 5 → per 2, extra 2
    assert.deepEqual(rangeAssignment(parts, group, 'g_a'), ['0-0', '0-1', '0-2']);
    assert.deepEqual(rangeAssignment(parts, group, 'g_b'), ['0-3', '0-4', '0-5']);
    assert.deepEqual(rangeAssignment(parts, group, 'g_c'), ['0-6', '0-7']);
    assert.deepEqual(rangeAssignment(parts, group, 'g_d'), ['0-8', '0-9']);
    assert.deepEqual(rangeAssignment(parts, group, 'g_e'), ['1-0', '1-1']);
  });

  it('gives nothing to members past the partition count, and to a non-member', () => {
    const parts = ['0-0', '0-1', '0-2'];
    const group = ['g_1', 'g_2', 'g_3', 'g_4', 'g_5'];
    assert.deepEqual(
      group.map((m) => rangeAssignment(parts, group, m)),
      [['0-0'], ['0-1'], ['0-2'], [], []],
    );
    assert.deepEqual(rangeAssignment(parts, group, 'g_6'), []);
    assert.deepEqual(rangeAssignment([], group, 'g_1'), []);
    assert.deepEqual(rangeAssignment(parts, [], 'g_1'), []);
  });

  it('sorts partition names as strings like Java (0-10 < 0-2), deduplicated', () => {
    assert.deepEqual(sortJavaStrings(['0-2', '0-10', '0-1', '1-0', '0-2', '10-0', '2-0']), ['0-1', '0-10', '0-2', '1-0', '10-0', '2-0']);
    const parts = partitionNames(1, 12); // 0-0 .. 0-11
    const group = ['g_x', 'g_y', 'g_z'];
    // String order: 0-0 0-1 0-10 0-11 | 0-2 0-3 0-4 0-5 | 0-6 0-7 0-8 0-9
    assert.deepEqual(rangeAssignment(parts, group, 'g_x'), ['0-0', '0-1', '0-10', '0-11']);
    assert.deepEqual(rangeAssignment(parts, group, 'g_y'), ['0-2', '0-3', '0-4', '0-5']);
    assert.deepEqual(rangeAssignment(parts, group, 'g_z'), ['0-6', '0-7', '0-8', '0-9']);
  });

  it('does not depend on the order of its inputs (members sorted as strings too)', () => {
    const parts = partitionNames(3, 5);
    const group = members('g', 4);
    const shuffledParts = [...parts].reverse();
    const shuffledGroup = [group[2] ?? '', group[0] ?? '', group[3] ?? '', group[1] ?? ''];
    for (const m of group) assert.deepEqual(rangeAssignment(shuffledParts, shuffledGroup, m), rangeAssignment(parts, group, m));
    // 'g_10' sorts before 'g_9' as a string.
    assert.deepEqual(rangeAssignment(['0-0', '0-1'], ['g_9', 'g_10'], 'g_10'), ['0-0']);
  });

  it('always yields a disjoint cover with shares differing by at most one', () => {
    for (let p = 0; p <= 40; p += 3) {
      for (let c = 1; c <= 9; c++) {
        const parts = partitionNames(2, Math.ceil(p / 2)).slice(0, p);
        const group = members('grp', c);
        const shares = new Map(group.map((m) => [m, rangeAssignment(parts, group, m)]));
        assertDisjointCover(shares, parts);
        const sizes = [...shares.values()].map((s) => s.length);
        assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `P=${p} C=${c}: ${sizes.join(',')}`);
      }
    }
  });
});

/**
 * The ring per the reference, written independently of the implementation: for each member (in
 * sorted order; a later member overwrites a shared point, like Java's TreeMap.put) and k in
 * 0..39, MD5(`<member>-<k>`) gives four little-endian unsigned 32-bit points; a partition with
 * hash h (first four MD5 bytes, little-endian) belongs to the smallest point >= h, else the
 * smallest point. Linear scan, bytes assembled by hand.
 */
function expectedOwner(partition: string, consumers: readonly string[]): string | undefined {
  const points = new Map<number, string>();
  for (const consumer of [...consumers].sort()) {
    for (let k = 0; k < 40; k++) {
      const d = createHash('md5').update(`${consumer}-${k}`).digest();
      for (let h = 0; h < 4; h++) {
        const point = ((d[3 + h * 4] ?? 0) * 2 ** 24 + ((d[2 + h * 4] ?? 0) << 16) + ((d[1 + h * 4] ?? 0) << 8) + (d[h * 4] ?? 0));
        points.set(point, consumer);
      }
    }
  }
  const p = createHash('md5').update(partition).digest();
  const hash = (p[3] ?? 0) * 2 ** 24 + ((p[2] ?? 0) << 16) + ((p[1] ?? 0) << 8) + (p[0] ?? 0);
  let best: number | undefined;
  let lowest: number | undefined;
  for (const point of points.keys()) {
    if (lowest === undefined || point < lowest) lowest = point;
    if (point >= hash && (best === undefined || point < best)) best = point;
  }
  const chosen = best ?? lowest;
  return chosen === undefined ? undefined : points.get(chosen);
}

describe('consistentHashAssignment (MetaQ ConsisHashStrategy)', () => {
  it('matches owners computed from MD5 per the reference', () => {
    for (const c of [1, 2, 3, 5, 8]) {
      const group = members(`cg${c}`, c);
      const parts = partitionNames(4, 16);
      for (const me of group) {
        const expected = parts.filter((name) => expectedOwner(name, group) === me).sort();
        assert.deepEqual(consistentHashAssignment(parts, group, me), expected, `member ${me} of ${c}`);
      }
    }
  });

  it('pins owners produced by a Java TreeMap ring (String.getBytes, ceilingKey, firstKey)', () => {
    // Golden values from a 20-line Java 17 program following ConsisHashStrategy's algorithm.
    const group = ['meta-test_10.0.0.3-3456-1', 'meta-test_10.0.0.1-1234-1', 'meta-test_10.0.0.2-2345-1'];
    const parts = partitionNames(2, 6);
    assert.deepEqual(consistentHashAssignment(parts, group, 'meta-test_10.0.0.1-1234-1'), ['0-0', '0-1', '0-2', '0-4']);
    assert.deepEqual(consistentHashAssignment(parts, group, 'meta-test_10.0.0.2-2345-1'), ['0-3', '0-5', '1-0', '1-1', '1-4', '1-5']);
    assert.deepEqual(consistentHashAssignment(parts, group, 'meta-test_10.0.0.3-3456-1'), ['1-2', '1-3']);
  });

  it('yields a disjoint cover; a non-member gets nothing', () => {
    for (const c of [1, 2, 4, 7]) {
      const group = members('cover', c);
      const parts = partitionNames(3, 10);
      assertDisjointCover(new Map(group.map((m) => [m, consistentHashAssignment(parts, group, m)])), parts);
      assert.deepEqual(consistentHashAssignment(parts, group, 'cover_stranger'), []);
    }
    assert.deepEqual(consistentHashAssignment(['0-0'], [], 'x'), []);
  });

  it('moves only the leaving member’s partitions when a member leaves', () => {
    const group = members('stable', 5);
    const parts = partitionNames(4, 25);
    const before = new Map(parts.map((name) => [name, expectedOwner(name, group)]));
    const leaving = group[2] ?? '';
    const rest = group.filter((m) => m !== leaving);
    for (const m of rest) {
      const after = consistentHashAssignment(parts, rest, m);
      for (const name of parts) {
        if (before.get(name) === m) assert.ok(after.includes(name), `${name} moved away from ${m} although ${m} stayed`);
      }
    }
  });

  it('spreads many partitions over the members roughly evenly (160 points each)', () => {
    const group = members('balance', 4);
    const parts = partitionNames(10, 100); // 1000
    const sizes = group.map((m) => consistentHashAssignment(parts, group, m).length);
    assert.equal(sizes.reduce((a, b) => a + b, 0), 1000);
    for (const size of sizes) assert.ok(size > 150 && size < 350, `uneven share ${size} of 1000 (sizes ${sizes.join(',')})`);
  });
});
