/* Step through a lesson: its title and each section's headline are the steps. Arrow keys, Page
   Up / Page Down (what presentation clickers send) and the Previous / Next buttons move between
   them; the step is kept in the URL (?step=N), so a link opens at the same step.
   A computation shown step by step in the current section moves first: while its own Next (or
   Back) button is enabled, the keys press that button instead. The page marks those buttons with
   containers keyed step-next-KEY and step-back-KEY (app/widgets.py, computation_steps).
   In a class room, the instructor's page has a Sync button (keyed room-sync, app/rooms.py): a
   new step presses it, so the room learns the step; a student's page that follows the room is
   sent to a new address with a popstate event, and moves to the step that address names.
   Its words come from the page, in the session's language, as window.tinyformersStepperText
   (app/widgets.py, page_style): set again on every run, read each time the control is drawn. */
(() => {
  if (window.tinyformersStepper) return;
  window.tinyformersStepper = true;

  const headings = () =>
    [...document.querySelectorAll("[data-testid='stMain'] h1, [data-testid='stMain'] h3")];
  const asked = () => {
    const n = parseInt(new URLSearchParams(window.location.search).get("step") || "0", 10);
    return Number.isFinite(n) && n > 0 ? n : 0;
  };
  let step = asked();
  let page = window.location.pathname;
  let held = null; // the step just reached, kept in place while the page above it still draws
  const current = () => step;
  const writeStep = () => {
    const url = new URL(window.location.href);
    if (step > 0) url.searchParams.set("step", String(step));
    else url.searchParams.delete("step");
    if (url.href !== window.location.href) window.history.replaceState(window.history.state, "", url);
  };

  // The control's words: "step" (a template with {n} and {total}), "previous" and "next".
  const text = (name) => String((window.tinyformersStepperText || {})[name] || "");
  let drawn = { words: null, total: 0 }; // what the control was last drawn with
  const label = document.createElement("span");
  const titled = []; // [button, the name of its title]
  const show = (n, total) => {
    drawn = { words: window.tinyformersStepperText, total };
    label.textContent = total
      ? text("step").replace("{n}", String(n + 1)).replace("{total}", String(total))
      : "";
    for (const [b, name] of titled) b.title = text(name);
    document.body.dataset.step = String(n);
  };

  const hold = (heading) => {
    held = { heading, top: heading.getBoundingClientRect().top, until: Date.now() + 3000 };
  };

  let syncing = null;
  const sync = () => {  // tell the room (if this page drives one) the step, once it settles
    window.clearTimeout(syncing);
    syncing = window.setTimeout(() => {
      const button = document.querySelector("[class*='st-key-room-sync'] button");
      if (button) button.click();
    }, 400);
  };

  const go = (n) => {
    const steps = headings();
    if (!steps.length) return;
    const before = step;
    step = Math.min(Math.max(n, 0), steps.length - 1);
    steps[step].scrollIntoView({ block: "start" });
    hold(steps[step]);
    writeStep();
    show(step, steps.length);
    if (step !== before) sync();
  };

  // The enabled Next (move > 0) or Back button of a computation in the current section: after
  // its headline and before the next one.
  const computationButton = (move) => {
    const steps = headings();
    const from = steps[step];
    if (!from) return null;
    const to = steps[step + 1];
    const marker = move > 0 ? "step-next-" : "step-back-";
    const within = (el) =>
      from.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING &&
      (!to || to.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_PRECEDING);
    const buttons = document.querySelectorAll(
      `[data-testid='stMain'] [class*='st-key-${marker}'] button:not(:disabled)`);
    return [...buttons].find(within) || null;
  };

  const move = (delta) => {
    const button = computationButton(delta);
    if (!button) {
      go(current() + delta);
      return;
    }
    button.click();
    const heading = headings()[step];
    if (heading) hold(heading);
  };

  const typing = (target) =>
    target instanceof Element &&
    target.closest("input, textarea, select, [role='slider'], [role='combobox'], [contenteditable='true']");

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) return;
    if (event.key === "ArrowRight" || event.key === "PageDown") move(1);
    else if (event.key === "ArrowLeft" || event.key === "PageUp") move(-1);
    else return;
    event.preventDefault();
  });

  const bar = document.createElement("div");
  bar.className = "tf-stepper";
  const button = (symbol, title, delta) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = symbol;
    b.title = text(title);
    titled.push([b, title]);
    b.addEventListener("click", () => move(delta));
    return b;
  };
  bar.append(button("◀", "previous", -1), label, button("▶", "next", 1));
  document.body.append(bar);

  // The app rewrites the URL as choices change: keep the step in it, and start again at the
  // first step (or the one a link names) on another lesson.
  window.setInterval(() => {
    if (held && Date.now() < held.until && held.heading.isConnected &&
        Math.abs(held.heading.getBoundingClientRect().top - held.top) > 40) {
      held.heading.scrollIntoView({ block: "start" });
    }
    if (window.location.pathname !== page) {
      page = window.location.pathname;
      step = asked();
      show(step, headings().length);
    } else if (asked() !== step) {
      writeStep();
    }
    // new words (the language changed) or more steps (the page drew more of its headlines)
    const total = headings().length;
    if (window.tinyformersStepperText !== drawn.words || total !== drawn.total) show(step, total);
  }, 300);

  // A link with ?step=N opens at that step once the page has drawn its headings.
  const arrive = () => {
    let tries = 0;
    const waiting = window.setInterval(() => {
      const steps = headings();
      tries += 1;
      if (steps.length > current() || tries > 600) {
        window.clearInterval(waiting);
        if (current() > 0) go(current());
        else show(0, steps.length);
      }
    }, 100);
  };
  arrive();

  // A new address from the history (Back, Forward, or a class room the page follows).
  window.addEventListener("popstate", () => {
    page = window.location.pathname;
    step = asked();
    arrive();
  });
})();
