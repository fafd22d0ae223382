/** Tiny DOM helpers for the pages. */

/**
 * Creates an element. Props: `class`, `text`, `on<Event>` handlers,
 * `data-*`/`aria-*` and other attributes; boolean true/false adds/omits the
 * attribute; null/undefined are skipped. Children are nodes or strings.
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {...(Node | string | null | undefined | false)} children
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === "value") el.value = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
  return el;
}

/**
 * The element matching `selector` under `root`; throws if missing (a page bug).
 * @param {string} selector
 * @param {ParentNode} [root]
 */
export function $(selector, root = document) {
  const el = root.querySelector(selector);
  if (!el) throw new Error(`missing element ${selector}`);
  return el;
}

/**
 * Replaces `container`'s children and, if focus was inside it, puts focus back
 * on the same control of the same row: rows carry `data-focus-key`, controls
 * are matched by `data-testid` (else their class). Lists re-render on every
 * state, and a keyboard user must not lose their place each time.
 * @param {Element} container
 * @param {Node[]} children
 */
export function replaceKeepingFocus(container, children) {
  const active = document.activeElement;
  const row = active instanceof HTMLElement && container.contains(active) ? active.closest("[data-focus-key]") : null;
  const rowKey = row && container.contains(row) ? row.getAttribute("data-focus-key") : null;
  const part = active instanceof HTMLElement ? active.getAttribute("data-testid") ?? active.className : "";
  container.replaceChildren(...children);
  if (rowKey === null || document.activeElement === active) return;
  const newRow = container.querySelector(`[data-focus-key="${CSS.escape(rowKey)}"]`);
  if (!newRow) return;
  const same = (el) => (el.getAttribute("data-testid") ?? el.className) === part;
  const target = same(newRow) ? newRow : [...newRow.querySelectorAll("*")].find(same);
  if (target instanceof HTMLElement) target.focus({ preventScroll: true });
}
