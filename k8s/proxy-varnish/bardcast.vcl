vcl 4.1;
# bardcast caching proxy on Varnish (7.1): the same job as bardcast.conf.template (nginx),
# without nginx's cache-lock polling. The origin's address is not in this file: it includes
# ./bardcast-backend.vcl from its own folder, one line such as
#     backend bardcast_origin { .host = "127.0.0.1"; .port = "3000"; }
# (k8s/proxy-varnish/render-varnish-local.sh writes both into a folder for local runs and tests;
# in a container, mount both files side by side, e.g. from one ConfigMap.) Run varnishd with
# -p pipe_timeout=3600 (the /ws idle timeout; VCL 7.1 cannot set it per request).
#
# What the origin sends, and what this proxy makes of it (as in the nginx template):
#   /hls/*/init.mp4, /hls/*/part/*.m4s, /hls/*/seg/*.m4s  200, public, max-age=31536000, immutable
#       -> cached for good (until LRU eviction); the bytes behind a URL never change.
#   /hls/*/live.m3u8?_HLS_msn=..&_HLS_part=..  (blocking)  200, public, max-age=6
#   /hls/*/live.m3u8 (plain reload)                        200, public, max-age=0, s-maxage=0
#       -> hashed on the full URL, query string included, so each blocking answer is its own
#          object; plain reloads (and the multivariant playlist) are passed, never looked up.
#   anything not yet published                             404, no-store -> never cached.
# As with nginx, only the origin's Cache-Control (max-age / s-maxage) makes a response
# cacheable: Varnish's own default (default_ttl, 120 s, for a 200 or 404 without
# Cache-Control) is not used, so the API's errors and the player's files are never kept.
#
# The waiting list (request coalescing), and why it fixes nginx's 500 ms poll.
#   A lookup that finds no usable object but a busy one (a fetch of the same hash in flight)
#   parks the request on the object head's waiting list; it holds no thread while parked
#   (cache_hash.c, HSH_Lookup: "There are one or more busy objects, wait for them";
#   cache_req_fsm.c, cnt_lookup: "We lost the session to a busy object, disembark the
#   worker thread"). So one request per URL goes to the origin, however many players ask.
#   The fetch "unbusies" the object as soon as vcl_backend_response has run on the
#   response's headers when the body is streamed (beresp.do_stream, on by default;
#   cache_fetch.c, vbf_stp_fetch: "if (bo->do_stream) { ... HSH_Unbusy(wrk, oc); ...}"),
#   and HSH_Unbusy wakes the waiting list at once: it reschedules rush_exponent (3) parked
#   requests, and each of those that finds the object (a hit) reschedules 3 more during
#   its own lookup (hsh_deref_objhead_unlock(..., HSH_RUSH_POLICY)), so n waiters are all
#   running again after ~log3(n) hand-offs, microseconds apart, not after a poll.
#   nginx's proxy_cache_lock has no such wake-up: a waiter looks again after
#   min(500 ms, lock timeout), which is what cost the blocking playlist answers ~0.5 s.
#   - A blocking playlist request is held by the origin until its part is published
#     (up to ~0.5 s at the live edge): the first one goes upstream, the others park, and
#     all of them are answered when the origin answers, from one upstream request.
#   - A part that all players fetch at once, or a preload-hinted part that a native player
#     asks for early (held by the origin until published): the same.
#   A parked request has no timeout of its own in 7.1; it waits for the fetch, which is
#   bounded by the backend timeouts below (first_byte_timeout 30 s on /hls/).
#
# Uncacheable answers must not serialize the waiting list. When the one fetch comes back
# uncacheable (the 404 no-store for a part not yet published, a 503/400 for a blocking
# request too far ahead, any error), the woken waiters must not each become the next single
# fetch in turn: with no object left behind (beresp.ttl <= 0, or uncacheable with ttl 0) a
# woken waiter finds nothing, becomes the next busy fetch, and the rest park behind it again,
# one origin round trip (up to the hold time) per waiter. Varnish does the same for its own
# backend errors (cache_fetch.c, vbf_stp_error: "cache the error return for a short time, so
# the waiting list can drain, rather than each objcore on the waiting list sequentially
# attempt to fetch from the backend"). The choice here: an uncacheable answer leaves a
# hit-for-pass object, return (pass(0.5s)), not the builtin hit-for-miss
# (beresp.uncacheable = true; ttl 120 s):
#   - hit-for-pass releases the whole waiting list at once: a parked request that finds it
#     (HSH_HITPASS) rushes 3 more in its own lookup, so all waiters pass to the origin in
#     parallel (Varnish issue #2978, fixed before 7.1). A hit-for-miss (HSH_HITMISS) rushes
#     nobody in its lookup: the others are released only as the earlier ones' own fetches
#     unbusy and deliver (3 each), one origin round trip per generation (measured: 39
#     waiters behind a 300 ms 404 came back in waves of 9 and 30, 300 ms apart; with
#     hit-for-pass all at once), slow when the origin holds those requests.
#   - 0.5 s, not 120 s: while the marker lives, requests for that URL are not coalesced
#     (hit-for-pass: passed; hit-for-miss: each its own fetch). A part answered 404 is at
#     least two parts ahead of the live edge (the origin holds the preload-hinted next
#     one), so it is published more than 512 ms later, after the marker is gone; a blocking
#     playlist answered 400/503 asked for a part seconds ahead (or its part was not
#     published within the origin's 6.5 s hold: the origin is in trouble anyway). The
#     marker has only to outlive the drain, which takes microseconds with hit-for-pass.
# Nothing uncacheable is stored as a response: the origin's 404 no-store is fetched again
# by the next request (a pass), never served from here.

include "./bardcast-backend.vcl";

sub vcl_recv {
    set req.backend_hint = bardcast_origin;

    # This proxy's own liveness, independent of the origin.
    if (req.url == "/proxy-health") {
        return (synth(200, "OK"));
    }

    # Control socket (clock sync pings, GM commands): a WebSocket upgrade on /ws is piped,
    # bytes both ways until either side closes (idle limit: the pipe_timeout parameter).
    if (req.url ~ "^/ws(\?|$)" && req.http.Upgrade ~ "(?i)websocket") {
        return (pipe);
    }

    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }

    # Init segments, parts and segments: immutable once published, looked up by URL.
    # Blocking playlist reloads (_HLS_msn present): looked up under their full URL, so the
    # players parked on one part share one upstream request (see the waiting list above).
    # Cookies and credentials play no part in these answers: dropped, so that a player
    # page's cookie cannot turn a lookup into a pass.
    if (req.url ~ "^/hls/[^/?]+/(init\.mp4|part/[^/?]+\.m4s|seg/[^/?]+\.m4s)(\?|$)" ||
        (req.url ~ "^/hls/([^/?]+/)?live\.m3u8\?" && req.url ~ "[?&]_HLS_msn=[^&]")) {
        unset req.http.Cookie;
        unset req.http.Authorization;
        return (hash);
    }

    # Plain playlist reloads (no _HLS_msn), the multivariant playlist, the API, audio files,
    # the player's pages: straight to the origin, no lookup and so no waiting list: two
    # players reloading at once never wait on each other.
    return (pass);
}

sub vcl_pipe {
    # Carry the upgrade through (by default Varnish sends "Connection: close" on a pipe).
    if (req.http.Upgrade) {
        set bereq.http.Upgrade = req.http.Upgrade;
        set bereq.http.Connection = req.http.Connection;
    }
    return (pipe);
}

sub vcl_hash {
    # The full URL with its query string (_HLS_msn, _HLS_part, _HLS_skip), and nothing
    # else: like nginx's proxy_cache_key $request_uri. Accept-Encoding is no part of it:
    # with http_gzip_support (on by default) Varnish asks the origin for gzip, stores that
    # one copy, ignores Accept-Encoding when matching Vary, and gunzips for the clients
    # that do not take gzip.
    hash_data(req.url);
    return (lookup);
}

sub vcl_backend_fetch {
    set bereq.connect_timeout = 5s;
    if (bereq.url ~ "^/hls/") {
        # A blocking reload is held until its part exists (up to ~3 target durations), a
        # preload-hinted part until it is published.
        set bereq.first_byte_timeout = 30s;
        set bereq.between_bytes_timeout = 30s;
    } else {
        set bereq.first_byte_timeout = 60s;
        set bereq.between_bytes_timeout = 60s;
    }
    return (fetch);
}

sub vcl_backend_response {
    # A pass (plain reloads, API, player files; hit-for-pass): nothing to decide.
    if (bereq.uncacheable) {
        return (deliver);
    }
    # Cacheable only as the origin says: a max-age or s-maxage (beresp.ttl is computed from
    # them, s-maxage first), and nothing that forbids storing it.
    if (beresp.ttl > 0s &&
        beresp.http.Cache-Control ~ "(?i)(^|[ ,])(s-maxage|max-age)=" &&
        beresp.http.Cache-Control !~ "(?i)no-store|no-cache|private" &&
        !beresp.http.Set-Cookie &&
        beresp.http.Vary != "*") {
        if (bereq.url ~ "\.m3u8(\?|$)") {
            # A blocking answer lives its max-age (6 s), not served stale after that.
            set beresp.grace = 0s;
        }
        # Streamed (the default): waiters are woken when these headers are processed,
        # not when the body has arrived.
        set beresp.do_stream = true;
        return (deliver);
    }
    # Anything else (404 no-store, 400, 503, an answer without max-age): not stored, and a
    # short hit-for-pass so that the waiting list drains in parallel (see the header).
    return (pass(0.5s));
}

sub vcl_deliver {
    # HIT: served from the cache (including requests woken from the waiting list).
    # MISS: this request's own fetch, now stored. PASS: not stored (pass, hit-for-pass).
    if (obj.uncacheable) {
        set resp.http.X-Cache = "PASS";
    } else if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    return (deliver);
}

sub vcl_synth {
    if (req.url == "/proxy-health" && resp.status == 200) {
        set resp.http.Content-Type = "text/plain";
        set resp.http.Cache-Control = "no-store";
        set resp.body = {"ok
"};
        return (deliver);
    }
}
