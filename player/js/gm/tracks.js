/**
 * Track list panel: the whole library (server-side search and sort, 100 per
 * page so 20 000 tracks stay smooth) or one folder in its own order (drag to
 * reorder). Click, shift-click and ctrl/cmd-click select; selected tracks can
 * be dragged onto a folder or handled with the selection bar's buttons.
 */
import { h, replaceKeepingFocus } from "../dom.js";
import { formatTime } from "../format.js";
import { clickSelect, emptySelection, moveItems } from "../list.js";
import { TRACKS_MIME } from "./folders.js";

/** Rows per page. */
const PAGE_SIZE = 100;
/** Page size used to read a whole folder (the server's maximum). */
const FETCH_ALL_LIMIT = 500;
/** Search-as-you-type debounce (ms). */
const SEARCH_DEBOUNCE_MS = 250;

/**
 * @param {import("../dashboard.js").Context} ctx
 * @param {HTMLElement} panel
 * @param {ReturnType<typeof import("./folders.js").createFolderTree>} folders
 */
export function createTrackList(ctx, panel, folders) {
  const view = {
    folderId: /** @type {number | null} */ (null),
    folderName: "",
    /** Breadcrumb of the folder, e.g. "Combat › Bosses". */
    folderPath: "",
    search: "",
    sort: "title",
    page: 1,
    total: 0,
    /** Tracks on the current page. */
    rows: [],
    /** Every track of the folder in folder order, when reordering is possible; else null. */
    order: null,
    selection: emptySelection(),
    /** Ids being dragged out of this list, for reordering. */
    dragging: null,
    seq: 0,
  };

  const title = h("h2", { "data-testid": "tracks-title" }, "All tracks");
  const search = h("input", {
    type: "search", placeholder: "Search title, artist, album…", "aria-label": "Search tracks", "data-testid": "search",
    autocomplete: "off", enterkeyhint: "search",
  });
  const sort = h("select", { "aria-label": "Sort by", "data-testid": "sort" },
    ["title", "artist", "album", "filepath", "duration"].map((s) => h("option", { value: s, text: `Sort: ${s}` })));
  const count = h("span", { class: "muted count", "data-testid": "selection-count", title: "Click, shift-click and ctrl/cmd-click to select; drag onto a folder" });
  const buttons = {
    play: h("button", { type: "button", "data-testid": "selection-play", text: "▶ Play", onClick: () => play(selectedTracks()[0]) }),
    queue: h("button", { type: "button", "data-testid": "selection-queue", text: "+ Queue", onClick: enqueue }),
    layer: h("button", { type: "button", "data-testid": "selection-layer", text: "+ Layer", title: "Loop under the music", onClick: () => ctx.emit("add-layers", playableIds()) }),
    pad: h("button", { type: "button", "data-testid": "selection-pad", text: "+ Pad", title: "Add to the pads of the scene playing", onClick: () => ctx.emit("add-pads", playableIds()) }),
    folder: h("button", { type: "button", "data-testid": "selection-add-folder", text: "Add to folder…", onClick: addToFolder }),
    remove: h("button", { type: "button", "data-testid": "selection-remove", text: "Remove from folder", onClick: removeFromFolder }),
    up: h("button", { type: "button", "data-testid": "selection-up", "aria-label": "Move selected up", text: "↑", onClick: () => shift(-1) }),
    down: h("button", { type: "button", "data-testid": "selection-down", "aria-label": "Move selected down", text: "↓", onClick: () => shift(1) }),
    all: h("button", { type: "button", "data-testid": "select-all", text: "Select page", onClick: selectPage }),
    clear: h("button", { type: "button", "data-testid": "selection-clear", text: "Clear", onClick: () => setSelection(emptySelection()) }),
  };
  const list = h("ul", { class: "track-list", "data-testid": "track-list", "aria-label": "Tracks" });
  const pageInfo = h("span", { class: "muted", "data-testid": "page-info" });
  const prev = h("button", { type: "button", "data-testid": "page-prev", text: "‹ Prev", onClick: () => goPage(view.page - 1) });
  const next = h("button", { type: "button", "data-testid": "page-next", text: "Next ›", onClick: () => goPage(view.page + 1) });

  panel.append(
    title,
    h("div", { class: "tracks-head" }, search, sort),
    h("div", { class: "selection-bar" }, count, Object.values(buttons)),
    list,
    h("div", { class: "pager" }, pageInfo, prev, next),
  );

  let debounce = null;
  search.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      view.search = search.value.trim();
      view.page = 1;
      load();
    }, SEARCH_DEBOUNCE_MS);
  });
  sort.addEventListener("change", () => {
    view.sort = sort.value;
    view.page = 1;
    load();
  });

  ctx.on("folder", ({ id, path }) => {
    view.folderId = id;
    view.folderName = path.at(-1) ?? "";
    view.folderPath = path.join(" › ");
    view.page = 1;
    view.order = null;
    load();
  });
  ctx.on("folder-changed", ({ id }) => {
    if (id !== view.folderId) return;
    view.order = null;
    load();
  });

  /** Whether rows show the folder's own order and can be reordered. */
  function reorderable() {
    return view.folderId !== null && view.search === "";
  }

  async function load() {
    const seq = ++view.seq;
    let rows;
    let total;
    if (reorderable()) {
      const all = view.order ?? (await ctx.run(() => fetchWholeFolder(view.folderId)));
      if (all === undefined || seq !== view.seq) return;
      view.order = all;
      total = all.length;
      rows = all.slice((view.page - 1) * PAGE_SIZE, view.page * PAGE_SIZE);
    } else {
      const result = await ctx.run(() => ctx.api.tracks({
        page: view.page, limit: PAGE_SIZE, search: view.search, folder_id: view.folderId ?? undefined, sort: view.sort,
      }));
      if (result === undefined || seq !== view.seq) return;
      view.order = null;
      rows = result.items ?? [];
      total = result.total ?? rows.length;
    }
    view.rows = rows;
    view.total = total;
    view.selection = emptySelection();
    render();
  }

  async function fetchWholeFolder(folderId) {
    const all = [];
    for (let page = 1; ; page++) {
      const result = await ctx.api.folderTracks(folderId, { page, limit: FETCH_ALL_LIMIT });
      const items = result.items ?? [];
      all.push(...items);
      if (items.length === 0 || all.length >= (result.total ?? 0)) return all;
    }
  }

  function render() {
    const where = view.folderId === null ? "All tracks" : view.folderPath;
    title.textContent = view.search ? `${where}: “${view.search}”` : where;
    sort.hidden = reorderable();
    const ids = view.rows.map((t) => t.id);
    replaceKeepingFocus(list, (view.rows.length
      ? view.rows.map((track, index) => row(track, index, ids))
      : [h("li", { class: "empty", "data-testid": "tracks-empty", text: view.search ? "No tracks match." : "No tracks here yet." })]));
    const first = view.total === 0 ? 0 : (view.page - 1) * PAGE_SIZE + 1;
    pageInfo.textContent = `${first}–${Math.min(view.page * PAGE_SIZE, view.total)} of ${view.total.toLocaleString()}`;
    prev.disabled = view.page <= 1;
    next.disabled = view.page * PAGE_SIZE >= view.total;
    renderSelection();
  }

  function row(track, index, ids) {
    const name = track.title || track.filename || `#${track.id}`;
    const li = h("li", {
      class: `track${track.missing ? " missing" : ""}`, draggable: "true",
      "data-testid": "track-row", "data-track-id": track.id, "data-focus-key": track.id, "data-selected": "false",
      title: track.filepath ?? "",
      onClick: (e) => {
        if (/** @type {HTMLElement} */ (e.target).closest("button, input")) return;
        setSelection(clickSelect(view.selection, ids, index, { shift: e.shiftKey, toggle: e.ctrlKey || e.metaKey }));
      },
      onDblclick: () => play(track),
      // Arrow keys move between rows, to the same control of the next or previous row.
      onKeydown: (e) => {
        const step = { ArrowDown: "nextElementSibling", ArrowUp: "previousElementSibling" }[e.key];
        if (!step) return;
        const part = /** @type {HTMLElement} */ (e.target).getAttribute("data-testid");
        const other = li[step]?.querySelector(`[data-testid="${part}"]`);
        if (other instanceof HTMLElement) {
          e.preventDefault();
          other.focus();
        }
      },
      onDragstart: (e) => {
        if (!view.selection.selected.has(track.id)) setSelection(clickSelect(emptySelection(), ids, index));
        const dragged = selectedTracks().map((t) => t.id);
        view.dragging = dragged;
        e.dataTransfer.setData(TRACKS_MIME, JSON.stringify(dragged));
        e.dataTransfer.setData("text/plain", `${dragged.length} track(s)`);
        e.dataTransfer.effectAllowed = "copyMove";
      },
      onDragend: () => { view.dragging = null; },
    },
    h("input", {
      type: "checkbox", class: "pick", "data-testid": "track-select", "aria-label": `Select ${name}`,
      onClick: (e) => {
        e.stopPropagation();
        setSelection(clickSelect(view.selection, ids, index, { shift: e.shiftKey, toggle: true }));
      },
    }),
    h("button", {
      type: "button", class: "play", "data-testid": "track-play", "aria-label": `Play ${name}`, disabled: track.missing,
      onClick: (e) => { e.stopPropagation(); play(track); },
    }, "▶"),
    h("div", { class: "t" }, name,
      track.missing ? h("span", { class: "tag", "data-testid": "track-missing", text: "missing" }) : null),
    h("div", { class: "a", text: [track.artist, track.album].filter(Boolean).join(" — ") }),
    h("div", { class: "d", text: formatTime(track.duration) }));
    if (reorderable()) reorderTarget(li, index);
    return li;
  }

  /** Dropping rows of this list on `li` moves them before it (upper half) or after it. */
  function reorderTarget(li, index) {
    const before = (e) => {
      const rect = li.getBoundingClientRect();
      return (view.page - 1) * PAGE_SIZE + index + (e.clientY > rect.top + rect.height / 2 ? 1 : 0);
    };
    li.addEventListener("dragover", (e) => {
      if (!view.dragging) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "move";
      li.classList.add("drop-before");
    });
    li.addEventListener("dragleave", () => li.classList.remove("drop-before"));
    li.addEventListener("drop", (e) => {
      li.classList.remove("drop-before");
      if (!view.dragging) return;
      e.preventDefault();
      reorder(view.dragging, before(e));
    });
  }

  async function reorder(movingIds, before) {
    const ids = view.order.map((t) => t.id);
    const newIds = moveItems(ids, movingIds, before);
    if (newIds.every((id, i) => id === ids[i])) return;
    const byId = new Map(view.order.map((t) => [t.id, t]));
    const keep = new Set(movingIds);
    if ((await ctx.run(() => ctx.api.orderFolder(view.folderId, newIds))) === undefined) return;
    view.order = newIds.map((id) => byId.get(id));
    await load();
    // keep the moved rows selected so repeated ↑/↓ presses work
    const pageIds = view.rows.map((t) => t.id);
    setSelection({ selected: new Set(pageIds.filter((id) => keep.has(id))), anchor: null });
  }

  /** Moves the selection one place up (-1) or down (+1) in the folder order. */
  function shift(direction) {
    const ids = view.order.map((t) => t.id);
    const selected = ids.map((id, i) => (view.selection.selected.has(id) ? i : -1)).filter((i) => i >= 0);
    if (!selected.length) return;
    const before = direction < 0 ? Math.max(0, selected[0] - 1) : Math.min(ids.length, selected[selected.length - 1] + 2);
    reorder(ids.filter((_, i) => view.selection.selected.has(ids[i])), before);
  }

  function setSelection(selection) {
    view.selection = selection;
    renderSelection();
  }

  function renderSelection() {
    view.rows.forEach((track, i) => {
      const selected = view.selection.selected.has(track.id);
      list.children[i]?.setAttribute("data-selected", String(selected));
      const pick = list.children[i]?.querySelector("input.pick");
      if (pick instanceof HTMLInputElement) pick.checked = selected;
    });
    const n = view.selection.selected.size;
    count.textContent = n ? `${n} selected` : "None selected";
    for (const key of ["play", "queue", "layer", "pad", "folder", "clear"]) buttons[key].disabled = n === 0;
    buttons.remove.hidden = buttons.up.hidden = buttons.down.hidden = view.folderId === null;
    buttons.remove.disabled = n === 0;
    buttons.up.disabled = buttons.down.disabled = n === 0 || !reorderable();
    buttons.all.disabled = view.rows.length === 0;
  }

  function selectPage() {
    setSelection({ selected: new Set(view.rows.map((t) => t.id)), anchor: 0 });
  }

  /** Selected tracks on this page, in display order. */
  function selectedTracks() {
    return view.rows.filter((t) => view.selection.selected.has(t.id));
  }

  function play(track) {
    if (!track || track.missing) return;
    ctx.command("play", { trackId: track.id });
  }

  /** Ids of the selected tracks whose files are there. */
  function playableIds() {
    return selectedTracks().filter((t) => !t.missing).map((t) => t.id);
  }

  function enqueue() {
    const trackIds = selectedTracks().filter((t) => !t.missing).map((t) => t.id);
    if (trackIds.length) ctx.command("queue", { action: "add", trackIds });
  }

  async function addToFolder() {
    const folderId = await folders.pick("Add to folder…");
    if (folderId !== undefined) await folders.addTracks(folderId, selectedTracks().map((t) => t.id));
  }

  async function removeFromFolder() {
    const folderId = view.folderId;
    const ids = selectedTracks().map((t) => t.id);
    const n = ids.length;
    const done = await ctx.run(
      () => Promise.all(ids.map((id) => ctx.api.removeFromFolder(id, folderId))),
      `Removed ${n} track${n === 1 ? "" : "s"} from “${view.folderName}”`,
    );
    if (done === undefined) return;
    view.order = null;
    await load();
    folders.load();
  }

  function goPage(page) {
    view.page = Math.max(1, page);
    load();
  }

  render();
  return {
    load,
    focusSearch() {
      search.focus();
      search.select();
    },
  };
}
