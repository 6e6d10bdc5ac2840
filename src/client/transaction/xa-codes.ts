/**
 * X/Open XA return codes and flags as `javax.transaction.xa.XAException` / `XAResource` define
 * them, so that code written against JTA reads the same here.
 */

/** XA return codes (the `xaCode` of an {@link XaError}). */
export const XaCode = {
  /** Prepare vote / success. */
  XA_OK: 0,
  /** The call may be retried (XA_RETRY). */
  XA_RETRY: 4,
  /** Prepare vote: nothing to commit, the branch is finished (read-only). */
  XA_RDONLY: 3,
  XA_HEURHAZ: 8,
  XA_HEURCOM: 7,
  XA_HEURRB: 6,
  XA_HEURMIX: 5,
  /** Rolled back for an unspecified reason (XA_RBBASE). */
  XA_RBROLLBACK: 100,
  /** Rolled back: a communication failure (here: a send got no answer). */
  XA_RBCOMMFAIL: 101,
  XA_RBDEADLOCK: 102,
  XA_RBINTEGRITY: 103,
  XA_RBOTHER: 104,
  XA_RBPROTO: 105,
  /** Rolled back because the branch outlived its timeout. */
  XA_RBTIMEOUT: 106,
  XA_RBTRANSIENT: 107,
  XAER_ASYNC: -2,
  /** Resource manager error (also: a plain error answer to an XA call). */
  XAER_RMERR: -3,
  /** Unknown XID. */
  XAER_NOTA: -4,
  /** Invalid arguments. */
  XAER_INVAL: -5,
  /** The call is not legal in the branch's state. */
  XAER_PROTO: -6,
  /** The resource manager is unavailable (no connection, no answer): retry later. */
  XAER_RMFAIL: -7,
  /** The XID already exists. */
  XAER_DUPID: -8,
  XAER_OUTSIDE: -9,
} as const;

const NAMES = new Map<number, string>(Object.entries(XaCode).map(([name, code]) => [code, name]));

/** `XAER_NOTA` for -4, `XA_RBTIMEOUT` for 106, `XA code 42` for anything else. */
export function xaCodeName(code: number): string {
  return NAMES.get(code) ?? `XA code ${code}`;
}

/** True for XA_RBBASE..XA_RBEND (100–107): the branch was rolled back. */
export function isRollbackCode(code: number): boolean {
  return code >= 100 && code <= 107;
}

/** True for the heuristic codes (5–8). */
export function isHeuristicCode(code: number): boolean {
  return code >= 5 && code <= 8;
}

/** Flags of `XAResource` calls (values of `javax.transaction.xa.XAResource`). */
export const XaFlags = {
  TMNOFLAGS: 0,
  /** start: join a branch already started (on this resource or one for which `isSameRM` is true). */
  TMJOIN: 0x00200000,
  /** recover: end of a recovery scan. */
  TMENDRSCAN: 0x00800000,
  /** recover: start of a recovery scan. */
  TMSTARTRSCAN: 0x01000000,
  /** end: suspend the association (resume with TMRESUME). */
  TMSUSPEND: 0x02000000,
  /** end: the work succeeded. */
  TMSUCCESS: 0x04000000,
  /** start: resume a suspended association. */
  TMRESUME: 0x08000000,
  /** end: the work failed; the branch may only be rolled back. */
  TMFAIL: 0x20000000,
  /** commit: one-phase (the `onePhase` argument of `commit` says the same). */
  TMONEPHASE: 0x40000000,
} as const;
