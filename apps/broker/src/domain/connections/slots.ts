/**
 * The lowest desktop slot in 1 … `allowed` that none of `taken` uses, or null when there is none.
 * Slots are what the unique index `assignments_active_user_slot_key` counts: with every slot at most
 * the policy's count and no slot twice, a user can never hold more desktops of a pool than allowed.
 */
export function firstFreeSlot(taken: readonly number[], allowed: number): number | null {
  const used = new Set(taken);
  for (let slot = 1; slot <= allowed; slot++) if (!used.has(slot)) return slot;
  return null;
}
