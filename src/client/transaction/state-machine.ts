/**
 * A tiny explicit state machine for the client's transactions (style item 8, after kafkajs'
 * `eosManager/transactionStateMachine.js`): the legal moves live in one data table, every call
 * is guarded by it, and each change of state is reported to `onTransition` listeners.
 *
 * Why a table and not `if (state === …)` checks spread over the methods: the table is the whole
 * behaviour on one screen, tests walk it cell by cell, and a refused move names the state and
 * the event in its error instead of failing somewhere later.
 */

/** `TABLE[state][event]` = the next state; a missing cell means the event is refused in that state. */
export type TransitionTable<S extends string, E extends string> = Readonly<Record<S, Readonly<Partial<Record<E, S>>>>>;

/** One accepted event that changed the state. */
export interface StateTransition<S extends string, E extends string> {
  readonly from: S;
  readonly to: S;
  readonly event: E;
}

/** Called after each change of state. */
export type TransitionListener<S extends string, E extends string> = (transition: StateTransition<S, E>) => void;

/** Builds the error thrown for a refused event (the machine's state is unchanged). */
export type RefusalFactory<S extends string, E extends string> = (state: S, event: E) => Error;

/** Holds one state and moves it through a {@link TransitionTable}. */
export class StateMachine<S extends string, E extends string> {
  readonly #table: TransitionTable<S, E>;
  readonly #refuse: RefusalFactory<S, E>;
  readonly #listeners = new Set<TransitionListener<S, E>>();
  #state: S;

  constructor(table: TransitionTable<S, E>, initial: S, refuse: RefusalFactory<S, E>) {
    this.#table = table;
    this.#state = initial;
    this.#refuse = refuse;
  }

  /** The current state. */
  get state(): S {
    return this.#state;
  }

  /** The state `event` would lead to, or `undefined` when it is refused now. */
  peek(event: E): S | undefined {
    return this.#table[this.#state][event];
  }

  /** True when `event` is accepted now. */
  can(event: E): boolean {
    return this.peek(event) !== undefined;
  }

  /**
   * Applies `event` and returns the new state. Listeners run after the state changed; one that
   * throws is ignored (instrumentation must not break a commit).
   *
   * @throws whatever the refusal factory builds when the table has no cell for `event` now.
   */
  apply(event: E): S {
    const from = this.#state;
    const to = this.#table[from][event];
    if (to === undefined) throw this.#refuse(from, event);
    if (to !== from) {
      this.#state = to;
      for (const listener of this.#listeners) {
        try {
          listener({ from, to, event });
        } catch {
          // A broken listener must not change the outcome of the transaction.
        }
      }
    }
    return to;
  }

  /** Calls `listener` after each change of state; returns the function that removes it. */
  onTransition(listener: TransitionListener<S, E>): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }
}
