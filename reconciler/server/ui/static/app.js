/* convctl dashboard: progressive enhancement only (every page works without it).
 * 1. Forms with data-confirm ask in a dialog, then post with confirmed=yes.
 * 2. A [data-poll] region is refreshed from the same URL (header X-Convctl-Poll: 1), at most
 *    once per 5 s, only while the tab is visible and no dialog is open; focus, open
 *    <details> and the scroll of [data-keep-scroll] boxes are kept. */
(function () {
  "use strict";
  var dialogOpen = false;

  function confirmDialog(message, onYes) {
    var dialog = document.createElement("dialog");
    dialog.setAttribute("aria-labelledby", "confirm-title");
    dialog.setAttribute("aria-describedby", "confirm-text");
    var title = document.createElement("h2");
    title.id = "confirm-title";
    title.textContent = "Please confirm";
    var text = document.createElement("p");
    text.id = "confirm-text";
    text.textContent = message;
    var row = document.createElement("div");
    row.className = "actions";
    var yes = document.createElement("button");
    yes.type = "button"; yes.className = "btn btn-danger"; yes.textContent = "Confirm";
    var no = document.createElement("button");
    no.type = "button"; no.className = "btn btn-ghost"; no.textContent = "Cancel";
    row.appendChild(yes); row.appendChild(no);
    dialog.appendChild(title); dialog.appendChild(text); dialog.appendChild(row);
    document.body.appendChild(dialog);
    var opener = document.activeElement;
    dialogOpen = true;
    dialog.addEventListener("close", function () {
      dialogOpen = false;
      dialog.remove();
      if (opener && opener.focus && document.contains(opener)) { opener.focus(); }
    });
    yes.addEventListener("click", function () { dialog.close(); onYes(); });
    no.addEventListener("click", function () { dialog.close(); });
    dialog.showModal();
    no.focus();
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) { return; }
    if (form.querySelector("input[name=confirmed]")) { return; }
    event.preventDefault();
    confirmDialog(form.dataset.confirm, function () {
      var input = document.createElement("input");
      input.type = "hidden"; input.name = "confirmed"; input.value = "yes";
      form.appendChild(input);
      form.submit();
    });
  });

  var detail = document.getElementById("detail");
  if (detail && window.matchMedia("(max-width: 900px)").matches) { detail.scrollIntoView(); }

  var region = document.querySelector("[data-poll]");
  var stamp = document.getElementById("updated");
  if (!region || !window.fetch) { return; }
  var every = Math.max(5000, parseInt(region.dataset.poll, 10) || 5000);
  var last = null;  // the last region received: an unchanged one is not put in again

  function poll() {
    if (document.hidden || dialogOpen) { setTimeout(poll, every); return; }
    fetch(location.pathname + location.search, {
      headers: { "X-Convctl-Poll": "1" }, credentials: "same-origin", cache: "no-store"
    }).then(function (response) {
      if (response.status === 401) { location.reload(); return null; }
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html !== null && html !== undefined && !dialogOpen && html !== last) {
        last = html;
        var focused = document.activeElement && region.contains(document.activeElement)
          ? document.activeElement.id : "";
        var open = Array.prototype.map.call(region.querySelectorAll("details"),
          function (d) { return d.open; });
        var scrolled = Array.prototype.map.call(region.querySelectorAll("[data-keep-scroll]"),
          function (el) { return [el.scrollTop, el.scrollLeft]; });
        region.innerHTML = html;
        Array.prototype.forEach.call(region.querySelectorAll("details"), function (d, i) {
          if (open[i]) { d.open = true; }
        });
        Array.prototype.forEach.call(region.querySelectorAll("[data-keep-scroll]"),
          function (el, i) {
            if (scrolled[i]) { el.scrollTop = scrolled[i][0]; el.scrollLeft = scrolled[i][1]; }
          });
        if (focused) {
          var again = document.getElementById(focused);
          if (again) { again.focus({ preventScroll: true }); }
        }
        if (stamp) { stamp.textContent = "· updated " + new Date().toLocaleTimeString(); }
      }
    }).catch(function () { /* offline for a moment: try again later */ })
      .then(function () { setTimeout(poll, every); });
  }
  setTimeout(poll, every);
})();
