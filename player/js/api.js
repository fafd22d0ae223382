/**
 * REST client for the bardcast server: a fetch wrapper that adds
 * `Authorization: Bearer <GM key>` and turns the server's error bodies
 * (`{"error":{"code","message"}}`) and network failures into ApiError.
 * `fetch` is injected so tests need no network.
 */

import { here } from "./room.js";

/** An API failure. status 0 with code "unreachable" means no HTTP answer at all. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when unreachable
   * @param {string} code machine-readable code, e.g. "not_found"
   * @param {string} message for people
   */
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/**
 * Takes a GM key passed as `?key=` out of a URL.
 * @param {string} href the page address
 * @returns {{key: string | null, cleanUrl: string}} the key and the address without it
 */
export function extractKey(href) {
  const url = new URL(href);
  const key = url.searchParams.get("key");
  url.searchParams.delete("key");
  return { key: key || null, cleanUrl: url.pathname + url.search + url.hash };
}

/**
 * Query string from an object, leaving out null, undefined and "" values.
 * @param {Record<string, unknown>} params
 */
export function query(params = {}) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** URL of a track's cover image. */
export const coverUrl = (trackId) => `/api/tracks/${encodeURIComponent(trackId)}/cover`;

/**
 * @param {object} [o]
 * @param {typeof fetch} [o.fetch]
 * @param {string} [o.base=""] URL prefix
 * @param {() => string | null} [o.key] current GM key
 */
export function createApi({ fetch = (...a) => globalThis.fetch(...a), base = "", key = () => null } = {}) {
  /**
   * @param {string} method
   * @param {string} path starting with /api
   * @param {unknown} [body] sent as JSON
   * @returns {Promise<any>} the parsed JSON body, or null for an empty one
   */
  async function request(method, path, body) {
    const headers = { Accept: "application/json" };
    const k = key();
    if (k) headers.Authorization = `Bearer ${k}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      throw new ApiError(0, "unreachable", `Server unreachable (${err?.message ?? err})`);
    }
    const text = await response.text();
    let json = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        if (response.ok) throw new ApiError(response.status, "bad_response", "The server sent something that is not JSON");
      }
    }
    if (!response.ok) {
      const error = json?.error;
      throw new ApiError(response.status, error?.code ?? `http_${response.status}`, error?.message ?? (response.statusText || `HTTP ${response.status}`));
    }
    return json;
  }

  const post = (path, body = {}) => request("POST", path, body);
  const id = encodeURIComponent;

  return {
    request,
    /** @param {{page?: number, limit?: number, search?: string, folder_id?: number, sort?: string}} p */
    tracks: (p) => request("GET", `/api/tracks${query(p)}`),
    folders: () => request("GET", "/api/folders"),
    folderTracks: (folderId, p) => request("GET", `/api/folders/${id(folderId)}/tracks${query(p)}`),
    createFolder: (name, parentId = null) => post("/api/folders", { name, parentId }),
    /** @param {{name?: string, parentId?: number | null, sortOrder?: number}} changes */
    updateFolder: (folderId, changes) => request("PUT", `/api/folders/${id(folderId)}`, changes),
    deleteFolder: (folderId) => request("DELETE", `/api/folders/${id(folderId)}`),
    addToFolder: (folderId, trackIds, position) => post(`/api/folders/${id(folderId)}/tracks`, position === undefined ? { trackIds } : { trackIds, position }),
    removeFromFolder: (trackId, folderId) => request("DELETE", `/api/tracks/${id(trackId)}/folders/${id(folderId)}`),
    orderFolder: (folderId, trackIds) => request("PUT", `/api/folders/${id(folderId)}/tracks/order`, { trackIds }),
    scan: () => post("/api/scan"),
    scanStatus: () => request("GET", "/api/scan/status"),
    cachePrepare: (folderId) => post("/api/cache/prepare", folderId === undefined ? {} : { folderId }),
    cacheStatus: () => request("GET", "/api/cache/status"),
    session: () => request("GET", here.session),
    /**
     * A GM command; resolves to the new session state.
     * @param {string} name e.g. "pause", "play", "queue"
     * @param {object} [body]
     */
    command: (name, body = {}) => post(`${here.session}/${id(name)}`, body),
    scenes: () => request("GET", "/api/scenes"),
    deviceChecks: () => request("GET", "/api/reports?limit=20"),
    createScene: (spec) => post("/api/scenes", spec),
    updateScene: (sceneId, spec) => request("PUT", `/api/scenes/${id(sceneId)}`, spec),
    deleteScene: (sceneId) => request("DELETE", `/api/scenes/${id(sceneId)}`),
    orderScenes: (sceneIds) => request("PUT", "/api/scenes/order", { sceneIds }),
    sceneFromStage: (name) => post(`/api/scenes/from-stage${here.query}`, { name }),
    exportScenes: () => request("GET", "/api/scenes/export"),
    rooms: () => request("GET", "/api/rooms"),
    /** @param {{name: string, slug?: string}} room */
    createRoom: (room) => post("/api/rooms", room),
    renameRoom: (slug, name) => request("PATCH", `/api/rooms/${id(slug)}`, { name }),
    deleteRoom: (slug) => request("DELETE", `/api/rooms/${id(slug)}`),
    rotateRoomKey: (slug) => post(`/api/rooms/${id(slug)}/key`),
    importScenes: (file) => post("/api/scenes/import", file),
  };
}
