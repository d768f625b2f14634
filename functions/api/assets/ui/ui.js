// Live regions: an element with data-live="<url>" is replaced by that URL's HTML every
// two seconds while the page is open (the same-origin fragment endpoints of the dashboard).
(function () {
  function refresh(el) {
    fetch(el.getAttribute("data-live"), { credentials: "same-origin", headers: { "x-gantry-fragment": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null && html !== el.innerHTML) { el.innerHTML = html; } })
      .catch(function () {});
  }
  function tick() { document.querySelectorAll("[data-live]").forEach(refresh); }
  setInterval(tick, 2000);
})();
