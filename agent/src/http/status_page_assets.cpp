// The status page's style sheet and script as raw strings. No data and no URLs in here: the
// page must work offline on a locked-down server and under a hash-pinned CSP.
#include "http/status_page_assets.h"

namespace psa::agent::http {

// One column on a phone, a grid from laptop width; states carry words as well as colours.
const char* const kStatusPageCss = R"CSS(
:root{--bg:#f4f6f8;--card:#fff;--ink:#1d2630;--mute:#5b6773;--line:#dde3e9;
--ok:#1a7f37;--ok-bg:#e6f4ea;--warn:#8a5a00;--warn-bg:#fff4d6;--fail:#b42318;--fail-bg:#fde8e7;
--idle:#4b5563;--idle-bg:#eceff3;--in:#2563eb;--out:#16a34a}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.top{padding:14px 20px;background:var(--card);border-bottom:1px solid var(--line)}
h1{margin:0 0 4px;font-size:20px;font-weight:600}
h1 .sub{font-weight:400;color:var(--mute)}
h2{margin:0 0 10px;font-size:13px;letter-spacing:.06em;text-transform:uppercase;color:var(--mute)}
h3{margin:0;font-size:16px;word-break:break-all}
.facts{margin:0;color:var(--mute)}
.facts span+span:before{content:" · "}
.note{margin:6px 0 0;font-size:13px;color:var(--mute)}
main{display:grid;grid-template-columns:1fr;gap:12px;padding:10px;max-width:1280px;margin:0 auto}
@media (min-width:820px){main{grid-template-columns:1fr 1fr;gap:14px;padding:14px}
.wide{grid-column:1/-1}}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;
min-width:0}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:13px;font-weight:600;
border:1px solid currentColor;white-space:nowrap}
.ok{color:var(--ok);background:var(--ok-bg)}.warn{color:var(--warn);background:var(--warn-bg)}
.fail{color:var(--fail);background:var(--fail-bg)}.idle{color:var(--idle);background:var(--idle-bg)}
.state{margin:0 0 10px;display:flex;flex-wrap:wrap;gap:8px;align-items:center}
.big{font-size:28px;font-weight:600;margin:0 0 8px}.big small{font-size:15px;font-weight:400;
color:var(--mute)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;margin:0}
dt{color:var(--mute)}dd{margin:0;min-width:0;overflow-wrap:anywhere}
.hint{color:var(--mute)}.hint:before{content:"▸ "}
meter{width:100%;height:12px}
table{border-collapse:collapse;width:100%;margin-top:10px;font-size:14px}
th,td{text-align:left;padding:4px 8px 4px 0;border-top:1px solid var(--line)}
th{color:var(--mute);font-weight:500}td.n,th.n{text-align:right}
.adapters{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px}
.adapter{border:1px solid var(--line);border-radius:6px;padding:10px 12px}
.adapter header{display:flex;gap:8px;align-items:baseline;flex-wrap:wrap;margin-bottom:8px}
.type{color:var(--mute);font-size:13px}
.counters{list-style:none;padding:0;margin:0;display:flex;flex-wrap:wrap;gap:4px 12px}
.list{list-style:none;padding:0;margin:0}
.list li{padding:6px 0;border-top:1px solid var(--line);display:grid;gap:4px 10px;
align-items:baseline;grid-template-columns:9em 6.5em 1fr}
.list li>*{justify-self:start}
.checks li{grid-template-columns:4.5em 9em 1fr}
.list li:first-child{border-top:0}
.list .name{font-weight:600;overflow-wrap:anywhere}.list .text{overflow-wrap:anywhere}
@media (max-width:560px){.list li,.checks li{grid-template-columns:auto 1fr}
.list .text{grid-column:1/-1}}
.when{color:var(--mute);font-size:13px;white-space:nowrap}
.empty{color:var(--mute);margin:0}
svg{display:block;width:100%;height:140px;background:#fafbfc;border:1px solid var(--line);
border-radius:4px}
.axis{display:flex;justify-content:space-between;font-size:12px;color:var(--mute)}
.legend{display:flex;flex-wrap:wrap;gap:4px 18px;margin:8px 0 0}
.line-in{stroke:var(--in)}.line-out{stroke:var(--out)}
.key-in,.key-out{font-weight:600}.key-in{color:var(--in)}.key-out{color:var(--out)}
.live{margin:6px 0 0;font-size:13px;color:var(--mute)}
.live.stale{color:var(--fail);font-weight:600}
)CSS";

// Polls /status.json (the `status --json` document) every few seconds; when what the page shows
// has changed, or every half minute for the ages and the chart, it re-fetches the page and swaps
// in each [data-part] element's fresh content: the server stays the only renderer, so the words
// match the CLI. DOMParser documents are inert (their scripts do not run) and nodes are moved
// with DOM APIs, never innerHTML.
const char* const kStatusPageScript = R"JS(
(function () {
  'use strict';
  var live = document.getElementById('live');
  var period = 1000 * (parseInt(document.body.getAttribute('data-refresh-s'), 10) || 5);
  var fullEvery = Math.max(period, 30000);
  var shown = null;
  var swappedAt = Date.now();
  function say(stale, text) {
    live.hidden = false;
    live.className = stale ? 'live stale' : 'live';
    live.textContent = text;
  }
  function get(url, as) {
    return fetch(url, {cache: 'no-store', credentials: 'same-origin'}).then(function (r) {
      if (!r.ok) { throw new Error('HTTP ' + r.status); }
      return as === 'json' ? r.json() : r.text();
    });
  }
  // What the page shows in words or counts; ages and process figures move on their own.
  function signature(s) {
    var c = s.cloud || {};
    var q = s.queue || {};
    return JSON.stringify([s.state, c.state, c.connected, c.last_error, c.in_flight, c.acked,
      c.reconnects, q.pending, q.leased, q.dead, q.db_bytes, q.error, s.log, s.config,
      (s.adapters || []).map(function (a) {
        return [a.name, a.state, a.healthy, a.last_error, a.last_message_at, a.counters];
      })]);
  }
  function swap(doc) {
    document.querySelectorAll('[data-part]').forEach(function (el) {
      var part = el.getAttribute('data-part');
      var fresh = doc.querySelector('[data-part="' + CSS.escape(part) + '"]');
      if (!fresh) { return; }
      for (var i = 0; i < fresh.attributes.length; i++) {
        el.setAttribute(fresh.attributes[i].name, fresh.attributes[i].value);
      }
      el.replaceChildren.apply(el, Array.prototype.map.call(fresh.childNodes, function (n) {
        return document.importNode(n, true);
      }));
    });
  }
  function refresh() {
    get('status.json', 'json')
      .then(function (s) {
        var now = signature(s);
        if (shown === null) { shown = now; }  // the page was rendered moments ago
        if (now === shown && Date.now() - swappedAt < fullEvery) { return; }
        return get(window.location.pathname, 'text').then(function (text) {
          swap(new DOMParser().parseFromString(text, 'text/html'));
          shown = now;
          swappedAt = Date.now();
        });
      })
      .then(function () {
        say(false, 'Live: checks every ' + period / 1000 + ' s (last ' +
            new Date().toLocaleTimeString() + ')');
      })
      .catch(function () {
        say(true, 'Cannot reach the agent: the figures below are from the last ' +
            'successful refresh');
      });
  }
  say(false, 'Live: checks every ' + period / 1000 + ' s');
  refresh();
  setInterval(refresh, period);
})();
)JS";

}  // namespace psa::agent::http
