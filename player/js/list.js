/** Selection and reordering in an ordered list of ids (tracks, queue); pure, no DOM. */

/**
 * @typedef {object} Selection
 * @property {Set<string|number>} selected ids
 * @property {number | null} anchor index the next shift-click extends from
 */

/** An empty selection. */
export function emptySelection() {
  return { selected: new Set(), anchor: null };
}

/**
 * Applies a click on `ids[index]` the way file managers do: a plain click
 * selects only it; ctrl/cmd (toggle) flips it; shift selects the range from
 * the anchor, added to the selection when toggle is held too.
 * @param {Selection} sel
 * @param {Array<string|number>} ids the list as displayed
 * @param {number} index clicked row
 * @param {{shift?: boolean, toggle?: boolean}} [mods]
 * @returns {Selection} a new selection
 */
export function clickSelect(sel, ids, index, { shift = false, toggle = false } = {}) {
  const id = ids[index];
  if (shift && sel.anchor !== null && sel.anchor < ids.length) {
    const [from, to] = sel.anchor <= index ? [sel.anchor, index] : [index, sel.anchor];
    const selected = toggle ? new Set(sel.selected) : new Set();
    for (let i = from; i <= to; i++) selected.add(ids[i]);
    return { selected, anchor: sel.anchor };
  }
  if (toggle) {
    const selected = new Set(sel.selected);
    if (selected.has(id)) selected.delete(id);
    else selected.add(id);
    return { selected, anchor: index };
  }
  return { selected: new Set([id]), anchor: index };
}

/**
 * The ids in `order` with `moving` (in their current relative order) taken
 * out and put back before the item that was at index `before` (ids.length =
 * the end). Used for drag reordering of one or many rows.
 * @param {Array<string|number>} order
 * @param {Array<string|number>} moving
 * @param {number} before index in `order`
 */
export function moveItems(order, moving, before) {
  const set = new Set(moving);
  const moved = order.filter((id) => set.has(id));
  const insertAt = order.slice(0, before).filter((id) => !set.has(id)).length;
  const rest = order.filter((id) => !set.has(id));
  return [...rest.slice(0, insertAt), ...moved, ...rest.slice(insertAt)];
}
