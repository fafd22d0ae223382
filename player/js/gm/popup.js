/** Modal dialogs and pop-up menus for the dashboard (touch-friendly, keyboard-usable). */
import { h } from "../dom.js";

/**
 * Opens a modal <dialog> built by `build(close)`; resolves with what `close` receives
 * (undefined when dismissed with Escape or Cancel).
 * @param {string} title
 * @param {(close: (value: any) => void) => Node[]} build
 */
function modal(title, build) {
  return new Promise((resolve) => {
    const dialog = h("dialog", { "data-testid": "dialog" });
    let result;
    const close = (value) => {
      result = value;
      dialog.close();
    };
    dialog.append(h("h3", { text: title }), ...build(close));
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

const cancelButton = (close) => h("button", { type: "button", "data-testid": "dialog-cancel", onClick: () => close(undefined), text: "Cancel" });

/**
 * Asks for a line of text; resolves to the trimmed text, or null when cancelled or empty.
 * @param {{title: string, label: string, value?: string, confirm?: string}} o
 */
export async function askText({ title, label, value = "", confirm = "OK" }) {
  const text = await modal(title, (close) => {
    const input = h("input", { type: "text", value, "data-testid": "dialog-input", "aria-label": label, autocomplete: "off" });
    const form = h("form", { method: "dialog", onSubmit: (e) => { e.preventDefault(); close(input.value); } },
      h("label", {}, h("span", { class: "muted small", text: label }), input),
      h("div", { class: "actions" }, cancelButton(close), h("button", { class: "primary", type: "submit", "data-testid": "dialog-ok", text: confirm })));
    queueMicrotask(() => input.select());
    return [form];
  });
  return text?.trim() ? text.trim() : null;
}

/**
 * Asks to confirm; resolves to true or false.
 * @param {{title: string, message: string, confirm?: string}} o
 */
export async function confirmAction({ title, message, confirm = "OK" }) {
  return (await modal(title, (close) => [
    h("p", { text: message }),
    h("div", { class: "actions" }, cancelButton(close),
      h("button", { class: "primary", type: "button", "data-testid": "dialog-ok", onClick: () => close(true), text: confirm })),
  ])) === true;
}

/**
 * Lets the GM pick one of `choices` (indented by depth); resolves to its value, or undefined.
 * @param {{title: string, choices: {label: string, value: any, depth?: number}[]}} o
 */
export function choose({ title, choices }) {
  return modal(title, (close) => [
    h("div", { class: "choices" }, choices.map((c) =>
      h("button", { type: "button", "data-testid": "dialog-choice", style: `padding-left: ${14 + 18 * (c.depth ?? 0)}px`, onClick: () => close(c.value), text: c.label }))),
    h("div", { class: "actions" }, cancelButton(close)),
  ]);
}

/**
 * Shows a menu of actions next to `anchor`; closes on choice, outside click or Escape.
 * @param {HTMLElement} anchor
 * @param {{label: string, testid: string, action: () => void}[]} items
 */
export function openMenu(anchor, items) {
  const menu = h("div", { class: "menu", role: "menu", "data-testid": "menu" },
    items.map((item) => h("button", { type: "button", role: "menuitem", "data-testid": item.testid, text: item.label, onClick: () => { dismiss(); item.action(); } })));
  const onDown = (e) => { if (!menu.contains(e.target)) dismiss(); };
  const onKey = (e) => { if (e.key === "Escape") { dismiss(); anchor.focus(); } };
  function dismiss() {
    menu.remove();
    document.removeEventListener("pointerdown", onDown, true);
    document.removeEventListener("keydown", onKey, true);
  }
  document.body.append(menu);
  const r = anchor.getBoundingClientRect();
  const width = menu.offsetWidth;
  const height = menu.offsetHeight;
  menu.style.left = `${Math.max(8, Math.min(r.left, innerWidth - width - 8))}px`;
  menu.style.top = `${r.bottom + height + 8 > innerHeight ? Math.max(8, r.top - height - 4) : r.bottom + 4}px`;
  document.addEventListener("pointerdown", onDown, true);
  document.addEventListener("keydown", onKey, true);
  menu.querySelector("button")?.focus();
}
