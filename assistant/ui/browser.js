() => {
  // Behaviour of the consultation page that Gradio's components do not offer on their own.
  const CHAT_INPUT = "#chat-input textarea";

  // Enter sends; Shift+Enter inserts a line break; Enter that confirms a Japanese input-method conversion does
  // neither (the input method consumes it).
  const inChatInput = (event) =>
    event.key === "Enter" && event.target instanceof HTMLTextAreaElement && event.target.closest("#chat-input");
  document.addEventListener("keydown", (event) => {
    if (!inChatInput(event) || event.isComposing || event.keyCode === 229) return;
    event.stopImmediatePropagation();
    if (event.shiftKey) return; // the browser inserts the line break
    event.preventDefault();
    document.querySelector("#chat-send")?.click();
  }, true);
  // Gradio's own handler (on keypress) would send on Shift+Enter instead; the line break still goes in.
  document.addEventListener("keypress", (event) => {
    if (inChatInput(event)) event.stopImmediatePropagation();
  }, true);

  // A citation marker [n] in an answer opens source n of that answer in the sources panel.
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest('a[href^="#cite-"]') : null;
    if (!link || !link.closest("#chatbot")) return;
    event.preventDefault();
    event.stopPropagation();
    const match = /^#cite-(\d+)-(\d+)$/.exec(link.getAttribute("href") || "");
    if (!match) return;
    const target = document.querySelector("#chat-cite-target textarea, #chat-cite-target input");
    if (!target) return;
    target.value = `${match[1]}:${match[2]}`;
    target.dispatchEvent(new Event("input", { bubbles: true }));
    setTimeout(() => document.querySelector("#chat-cite-open")?.click(), 0);
  }, true);

  // Screen-reader names that Gradio writes in English.
  const SPOKEN = [
    [/^user's message: /, "質問: "],
    [/^bot's message: /, "回答: "],
    [/^chatbot conversation$/, "相談の会話"],
    [/^Gradio footer navigation$/, "ページ下部のリンク"],
    [/^More tabs$/, "ほかのタブ"],
    [/^Scroll down$/, "下へスクロール"],
    [/^Close$/, "閉じる"],
    [/\]\(#cite-\d+-\d+\)/g, "]"],
    [/\[\[(\d+)\]/g, "[$1"],
  ];
  const renameSpoken = (root) => {
    root.querySelectorAll("[aria-label]").forEach((el) => {
      const label = el.getAttribute("aria-label");
      let spoken = label;
      for (const [pattern, japanese] of SPOKEN) spoken = spoken.replace(pattern, japanese);
      if (spoken !== label) el.setAttribute("aria-label", spoken);
    });
  };
  // Gradio heads its notices with the English name of their kind, whatever title the app gives them.
  const NOTICE_TITLES = { Warning: "注意", Info: "お知らせ", Error: "エラー", Success: "完了" };
  const renameNotices = () => {
    document.querySelectorAll('[data-testid="toast-body"] .toast-title-row span').forEach((span) => {
      span.childNodes.forEach((node) => {
        const japanese = node.nodeType === Node.TEXT_NODE && NOTICE_TITLES[node.nodeValue.trim()];
        if (japanese) node.nodeValue = `${japanese} `;
      });
    });
  };
  new MutationObserver(() => { renameSpoken(document.body); renameNotices(); }).observe(document.body, {
    childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: ["aria-label"],
  });
  renameSpoken(document.body);

  // The page is Japanese whatever the browser's language (Gradio sets the language it picked).
  const keepJapanese = () => {
    if (document.documentElement.lang !== "ja") document.documentElement.lang = "ja";
  };
  new MutationObserver(keepJapanese).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  keepJapanese();

  // When a new question is added, show it at the top of the view, so the answer is read from its start.
  let questions = 0;
  const watchChat = () => {
    const chat = document.querySelector("#chatbot");
    if (!chat) return false;
    new MutationObserver(() => {
      const rows = chat.querySelectorAll(".message-row.user-row");
      if (rows.length > questions && rows.length > 0) window.assistantShowLatest?.();
      questions = rows.length;
    }).observe(chat, { childList: true, subtree: true, attributes: true, attributeFilter: ["aria-label"] });
    return true;
  };
  const waitForChat = setInterval(() => { if (watchChat()) clearInterval(waitForChat); }, 200);

  const scrollBoxOf = (el) => {
    for (let node = el.parentElement; node; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (/(auto|scroll)/.test(style.overflowY) && node.scrollHeight > node.clientHeight) return node;
    }
    return null;
  };
  // Bring the start of the latest exchange (its question, then the answer below it) into view.
  window.assistantShowLatest = () => {
    const rows = document.querySelectorAll("#chatbot .message-row.user-row");
    const last = rows[rows.length - 1];
    if (!last) return;
    const box = scrollBoxOf(last);
    if (box && box.closest("#chatbot")) {
      box.scrollTop += last.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
    } else {
      window.scrollBy({ top: last.getBoundingClientRect().top - 8 });
    }
  };
  // Bring the opened source card into view (on a phone the panel is below the chat).
  window.assistantShowSource = () => {
    const card = document.querySelector("#chat-sources .citation.active");
    if (!card) return;
    const box = scrollBoxOf(card);
    if (box) box.scrollTop += card.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
    const top = card.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight - 80) window.scrollBy({ top: top - 8 });
  };
}
