// nomoat's small page script (no library, nothing from another host): the header's menu button, tabs, copy
// buttons, and live regions that re-fetch their server-rendered HTML until the server says they are settled.
(() => {
  const header = document.querySelector("header.top");
  const toggle = document.querySelector(".menu-toggle");
  if (header && toggle) {
    toggle.addEventListener("click", () => {
      const open = header.classList.toggle("open");
      toggle.setAttribute("aria-expanded", String(open));
    });
  }

  function activate(tab) {
    const list = tab.closest("[role=tablist]");
    for (const other of list.querySelectorAll("[role=tab]")) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
    }
  }
  document.addEventListener("click", (event) => {
    const tab = event.target.closest("[role=tab]");
    if (tab) activate(tab);
    const copy = event.target.closest("button.copy");
    if (copy) {
      const source = document.getElementById(copy.dataset.copy);
      const text = source.innerText.trim();
      const done = () => { copy.textContent = "Copied"; setTimeout(() => { copy.textContent = "Copy"; }, 1500); };
      const manual = () => { select(source); copy.textContent = "Press Ctrl+C"; };  // no clipboard access: select it
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, manual);
      else manual();
    }
  });
  document.addEventListener("keydown", (event) => {
    const tab = event.target.closest && event.target.closest("[role=tab]");
    if (!tab || !["ArrowLeft", "ArrowRight"].includes(event.key)) return;
    const tabs = [...tab.closest("[role=tablist]").querySelectorAll("[role=tab]")];
    const next = tabs[(tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    activate(next);
    next.focus();
  });
  function select(node) {
    const range = document.createRange();
    range.selectNodeContents(node);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // <div data-live="URL" data-settled="true|false">: while not settled, replace its HTML with the fragment at URL.
  for (const region of document.querySelectorAll("[data-live]")) {
    const every = parseInt(region.dataset.interval || "1500", 10);
    async function refresh() {
      if (region.dataset.settled === "true") return;
      try {
        const response = await fetch(region.dataset.live, {headers: {Accept: "text/html"}});
        if (response.ok) {
          const holder = document.createElement("div");
          holder.innerHTML = await response.text();
          const fresh = holder.firstElementChild;
          region.replaceChildren(fresh);
          region.dataset.settled = fresh.dataset.settled;
        }
      } catch (_) { /* the next round tries again */ }
      setTimeout(refresh, every);
    }
    setTimeout(refresh, every);
  }
})();
