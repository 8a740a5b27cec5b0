// Live updates for the server-rendered pages; every page reads fine without this script.
"use strict";

// Re-fetches a page fragment every two seconds: the Jobs table body, or the Job page's
// state and executions (until the job is over).
function poll(element) {
  const url = element.dataset.live;
  const target = element.tagName === "TABLE" ? element.querySelector("tbody") : element;
  if (!url || !target || element.hasAttribute("data-terminal")) return;
  const tick = async () => {
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (response.ok) {
        const html = await response.text();
        target.innerHTML = html;
        if (html.includes("data-terminal")) return;
      }
    } catch (e) {
      // A server restarting is no reason to stop; try again on the next tick.
    }
    setTimeout(tick, 2000);
  };
  setTimeout(tick, 2000);
}

// Streams an execution's output over the API's log WebSocket (the session cookie signs it).
function follow(pre) {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  let socket;
  try {
    socket = new WebSocket(scheme + location.host + pre.dataset.ws);
  } catch (e) {
    return;
  }
  let first = true;
  socket.onmessage = (message) => {
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch (e) {
      return;
    }
    if (first) {
      pre.textContent = "";
      first = false;
    }
    if (frame.error) {
      pre.dataset.error = frame.error;
      return;
    }
    if (frame.value && typeof frame.value.Line === "string") {
      pre.append(document.createTextNode(frame.value.Line));
      pre.scrollTop = pre.scrollHeight;
    }
  };
  socket.onclose = () => {
    pre.dataset.closed = "true";
  };
}

// Loads a chosen spec file into its textarea.
function loadInto(input) {
  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    const target = document.getElementById(input.dataset.into);
    if (!file || !target) return;
    file.text().then((text) => {
      target.value = text;
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(poll);
  document.querySelectorAll("pre[data-ws]").forEach(follow);
  document.querySelectorAll("input[data-into]").forEach(loadInto);
});
