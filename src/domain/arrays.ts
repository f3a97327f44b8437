/**
 * Appends `items` to `target` one by one. `target.push(...items)` passes every item as an argument: past about
 * 100,000 of them (a long session's messages, their units) it overflows the stack.
 */
export function pushAll<T>(target: T[], items: Iterable<T>): T[] {
  for (const item of items) target.push(item);
  return target;
}
