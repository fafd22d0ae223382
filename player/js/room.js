/**
 * The room a page is in, read from its address: `/r/{slug}/` (listener page), `/r/{slug}/gm`
 * (dashboard), `/r/{slug}/check`. The one-room addresses (`/`, `/gm`, `/check`) are the room
 * `main`'s and keep their one-room URLs for the stream, the socket and the session.
 */

/**
 * The room's slug, or null on a one-room address.
 * @param {string} pathname e.g. `location.pathname`
 */
export function roomSlug(pathname) {
  const m = /^\/r\/([a-z][a-z0-9-]*)(\/|$)/.exec(pathname);
  return m ? m[1] : null;
}

/** The page's name in its room: "" (listener), "gm" or "check". */
export function pageName(pathname) {
  const rest = roomSlug(pathname) === null ? pathname.slice(1) : pathname.replace(/^\/r\/[^/]+\/?/, "");
  return rest.replace(/\/$/, "");
}

/**
 * Where a room's things are. Every URL is absolute on the page's origin.
 * @param {string | null} slug
 */
export function roomUrls(slug) {
  return {
    slug,
    stream: slug ? `/hls/${slug}/live.m3u8` : "/hls/live.m3u8",
    session: slug ? `/api/rooms/${slug}/session` : "/api/session",
    /** The control socket's path and query. */
    socket: slug ? `/ws?room=${slug}` : "/ws",
    /** A query naming the room, for the shared APIs that act on one room's stage. */
    query: slug ? `?room=${slug}` : "",
    listen: slug ? `/r/${slug}/` : "/",
  };
}

/** The room of this page. */
export const here = roomUrls(typeof location === "undefined" ? null : roomSlug(location.pathname));

/**
 * On a room's page, puts the room's name in `brand` ("bardcast · Crypt of the Lich") and the
 * page title; resolves to the name, or null on a one-room address or when it cannot be read.
 * @param {Element | null} brand
 */
export async function showRoomName(brand) {
  const slug = roomSlug(location.pathname);
  if (!slug) return null;
  try {
    const r = await fetch("/api/rooms");
    const room = r.ok ? (await r.json()).rooms.find((x) => x.slug === slug) : null;
    if (!room) return null;
    if (brand) brand.textContent = `${brand.textContent} · ${room.name}`;
    document.title = `${room.name} · ${document.title}`;
    return room.name;
  } catch {
    return null;
  }
}
