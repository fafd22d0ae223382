/**
 * Queue panel: the upcoming tracks; reorder (drag or ↑/↓), remove, clear.
 *
 * The state lists a window of a long queue: `queue[i]` is queue position
 * `queueStart + i` of `queueLength`. Positions shown, `queueIndex` and the
 * indices sent in commands are all absolute.
 */
import { h, replaceKeepingFocus } from "../dom.js";
import { formatTime } from "../format.js";

/**
 * @param {import("../dashboard.js").Context} ctx
 * @param {HTMLElement} panel
 */
export function createQueue(ctx, panel) {
  const list = h("ol", { class: "queue", "data-testid": "queue" });
  const clear = h("button", { type: "button", "data-testid": "queue-clear", text: "Clear", onClick: () => ctx.command("queue", { action: "clear" }) });
  panel.append(h("h2", {}, "Queue", h("span", { class: "spacer" }), clear), list);
  let dragFrom = null;

  const move = (from, to) => from !== to && ctx.command("queue", { action: "move", from, to });

  function render() {
    const queue = ctx.state?.queue ?? [];
    const start = ctx.state?.queueStart ?? 0;
    const total = ctx.state?.queueLength ?? queue.length;
    const current = ctx.state?.queueIndex ?? -1;
    clear.disabled = queue.length === 0;
    if (!queue.length) {
      list.replaceChildren(h("li", { class: "empty", "data-testid": "queue-empty", text: "Queue is empty. Add tracks with “+ Queue”." }));
      return;
    }
    replaceKeepingFocus(list, queue.map((item, i) => {
      const index = start + i;
      const name = item.title || "Untitled";
      const li = h("li", {
        draggable: "true", "data-testid": "queue-item", "data-index": index, "data-focus-key": index, "aria-current": String(index === current),
        onDragstart: (e) => {
          dragFrom = index;
          e.dataTransfer.setData("text/plain", String(index));
          e.dataTransfer.effectAllowed = "move";
        },
        onDragend: () => { dragFrom = null; },
        onDragover: (e) => {
          if (dragFrom === null) return;
          e.preventDefault();
          li.classList.add("drop-before");
        },
        onDragleave: () => li.classList.remove("drop-before"),
        onDrop: (e) => {
          li.classList.remove("drop-before");
          if (dragFrom === null) return;
          e.preventDefault();
          move(dragFrom, index);
        },
      },
      h("span", { class: "muted small", "data-testid": "queue-position", text: String(index + 1) }),
      h("span", { class: "t", text: [name, item.artist].filter(Boolean).join(" — ") }),
      h("span", { class: "muted small", text: formatTime(item.duration) }),
      h("button", { type: "button", "data-testid": "queue-up", "aria-label": `Move ${name} up`, disabled: index === 0, onClick: () => move(index, index - 1), text: "↑" }),
      h("button", { type: "button", "data-testid": "queue-down", "aria-label": `Move ${name} down`, disabled: index === total - 1, onClick: () => move(index, index + 1), text: "↓" }),
      h("button", { type: "button", "data-testid": "queue-remove", "aria-label": `Remove ${name} from the queue`, onClick: () => ctx.command("queue", { action: "remove", index }), text: "✕" }));
      return li;
    }));
  }

  ctx.on("state", render);
  render();
}
