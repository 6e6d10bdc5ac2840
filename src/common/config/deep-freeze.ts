/**
 * Deep freezing for configuration objects: a loaded configuration is shared by every component,
 * so none of them may change it behind the others' backs.
 */

/** A type whose every nested property is readonly. */
export type DeepReadonly<T> = T extends (infer E)[]
  ? readonly DeepReadonly<E>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/**
 * Freezes `value` and, recursively, every object and array reachable through its own
 * properties; returns the same reference. Cycles are handled.
 */
export function deepFreeze<T>(value: T): DeepReadonly<T> {
  freeze(value, new WeakSet());
  return value as DeepReadonly<T>;
}

function freeze(value: unknown, seen: WeakSet<object>): void {
  // Why not stop at already-frozen objects: a frozen parent may still hold unfrozen children.
  if (typeof value !== 'object' || value === null || seen.has(value)) return;
  seen.add(value);
  Object.freeze(value);
  for (const key of Reflect.ownKeys(value)) freeze((value as Record<PropertyKey, unknown>)[key], seen);
}
