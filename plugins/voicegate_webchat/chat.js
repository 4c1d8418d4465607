// VoiceGate web chat page: talks to /channels/webchat/ws (protocol in docs/webchat.md).
// No framework, no build step: one file the gateway serves as-is.
(() => {
  "use strict";

  const body = document.body;
  const MAX_UPLOAD = Number(body.dataset.maxUploadBytes) || 5_000_000;
  const MAX_RECORDING_S = Number(body.dataset.maxRecordingS) || 60;
  const SESSION_KEY = "voicegate.webchat.session";
  const HISTORY_KEY = "voicegate.webchat.history";
  const HISTORY_LIMIT = 100;

  const lang = (navigator.language || "en").toLowerCase().startsWith("it") ? "it" : "en";
  const T = {
    en: {
      placeholder: "Type a message…", connecting: "connecting…", online: "online", offline: "reconnecting…",
      voiceNote: "Voice note", file: "File", tooLarge: (limit) => `That file is too large: the limit is ${limit}. Send a shorter recording or a smaller file.`,
      noMic: "This browser cannot record audio here. Try a recent Chrome, Firefox or Safari (the page must be opened over https or on localhost).",
      micDenied: "I couldn't use the microphone. Allow microphone access for this page and tap the microphone again.",
      tooShort: "That recording was too short. Tap the microphone, speak, then tap it again to send.",
      record: "Record a voice note", stop: "Stop and send", recordingHint: "tap the mic to send",
      welcome: "Say hello, ask for our opening hours or your balance, or talk to an agent.",
    },
    it: {
      placeholder: "Scrivi un messaggio…", connecting: "connessione…", online: "online", offline: "riconnessione…",
      voiceNote: "Messaggio vocale", file: "File", tooLarge: (limit) => `Il file è troppo grande: il limite è ${limit}. Invia una registrazione più breve o un file più piccolo.`,
      noMic: "Questo browser non può registrare audio qui. Prova un Chrome, Firefox o Safari recente (la pagina deve essere aperta in https o su localhost).",
      micDenied: "Non ho potuto usare il microfono. Consenti l'accesso al microfono per questa pagina e tocca di nuovo il microfono.",
      tooShort: "La registrazione era troppo breve. Tocca il microfono, parla, poi toccalo di nuovo per inviare.",
      record: "Registra un messaggio vocale", stop: "Ferma e invia", recordingHint: "tocca il mic per inviare",
      welcome: "Saluta, chiedi gli orari o il tuo saldo, oppure parla con un operatore.",
    },
  }[lang];

  const $ = (id) => document.getElementById(id);
  const log = $("messages");
  const form = $("composer");
  const input = $("message-input");
  const fileInput = $("file-input");
  const recordButton = $("record-button");
  const timer = $("recording-timer");
  const status = $("status");
  const recordingHint = $("recording-hint");
  document.documentElement.lang = lang;
  input.placeholder = T.placeholder;
  recordButton.title = T.record;
  recordingHint.textContent = T.recordingHint;
  $("welcome").textContent = T.welcome;

  // ------------------------------------------------------------------ connection

  let ws = null;
  let ready = false;
  let backoffMs = 500;
  let session = localStorage.getItem(SESSION_KEY);
  // Messages sent but not answered yet, by id: resent after a reconnect. The gateway answers
  // a repeated id once, so a resend never produces a second reply.
  const inflight = new Map();

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  function connect() {
    const url = new URL("ws", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    setStatus("connecting", T.connecting);
    ws = new WebSocket(url);
    ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "hello", session })));
    ws.addEventListener("message", (event) => onFrame(JSON.parse(event.data)));
    ws.addEventListener("close", () => {
      ready = false;
      setStatus("offline", T.offline);
      setTimeout(connect, backoffMs);
      backoffMs = Math.min(backoffMs * 2, 10_000);
    });
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "ready":
        ready = true;
        backoffMs = 500;
        session = frame.session;
        localStorage.setItem(SESSION_KEY, session);
        setStatus("online", T.online);
        for (const pending of inflight.values()) ws.send(JSON.stringify(pending));
        break;
      case "reply":
        inflight.delete(frame.in_reply_to);
        showBotMessages(frame.messages);
        break;
      case "push":
        showBotMessages(frame.messages);
        break;
      case "error":
        if (frame.in_reply_to) inflight.delete(frame.in_reply_to);
        addBubble({ role: "system", text: frame.hint ? `${capitalise(frame.error)}. ${frame.hint}.` : frame.error });
        break;
    }
    updateTyping();
  }

  function send(fields) {
    const frame = { type: "message", id: newId(), ...fields };
    inflight.set(frame.id, frame);
    if (ready) ws.send(JSON.stringify(frame));
    updateTyping();
  }

  function newId() {
    // crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // ------------------------------------------------------------------ rendering

  let history = [];
  try { history = JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]"); } catch { history = []; }

  function remember(entry) {
    history.push(entry);
    if (history.length > HISTORY_LIMIT) history = history.slice(-HISTORY_LIMIT);
    try { localStorage.setItem(HISTORY_KEY, JSON.stringify(history)); } catch { /* storage full: keep going */ }
  }

  function addBubble(entry, { store = true, audioUrl = null } = {}) {
    const bubble = document.createElement("div");
    bubble.className = `bubble ${entry.role}`;
    if (entry.note) {
      const label = document.createElement("span");
      label.className = "note-label";
      label.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 15a3 3 0 0 0 3-3V6a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.92V21h2v-2.08A7 7 0 0 0 19 12h-2z"/></svg>';
      label.append(entry.text);
      bubble.append(label);
      if (audioUrl) {
        const audio = document.createElement("audio");
        audio.controls = true;
        audio.src = audioUrl;
        bubble.append(audio);
      }
    } else {
      bubble.textContent = entry.text;
    }
    log.append(bubble);
    if (entry.role === "bot" && entry.buttons && entry.buttons.length) addQuickReplies(entry.buttons);
    if (store && entry.role !== "system") remember(entry);
    scrollDown();
    return bubble;
  }

  function addQuickReplies(buttons) {
    const row = document.createElement("div");
    row.className = "quick-replies";
    for (const b of buttons) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "quick-reply";
      button.textContent = b.title;
      button.addEventListener("click", () => {
        clearQuickReplies();
        addBubble({ role: "customer", text: b.title });
        send({ button: b.payload });
      });
      row.append(button);
    }
    log.append(row);
  }

  function clearQuickReplies() {
    for (const row of log.querySelectorAll(".quick-replies")) row.remove();
  }

  function showBotMessages(messages) {
    for (const m of messages || []) {
      const text = m.text || (m.attachments && m.attachments.length ? `${T.file}: ${m.attachments[0].filename || m.attachments[0].mime}` : "");
      if (text || (m.buttons && m.buttons.length)) addBubble({ role: "bot", text, buttons: m.buttons || [] });
    }
  }

  let typing = null;
  function updateTyping() {
    const waiting = inflight.size > 0;
    if (waiting && !typing) {
      typing = document.createElement("div");
      typing.className = "typing";
      typing.setAttribute("aria-hidden", "true");
      typing.innerHTML = "<span></span><span></span><span></span>";
      log.append(typing);
      scrollDown();
    } else if (!waiting && typing) {
      typing.remove();
      typing = null;
    } else if (typing) {
      log.append(typing); // keep it last
    }
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }
  function humanSize(n) { // binary units, as the gateway's messages
    return n >= 1048576 ? `${(n / 1048576).toFixed(1).replace(/\.0$/, "")} MB` : `${Math.max(1, Math.round(n / 1024))} KB`;
  }
  function capitalise(s) { return s ? s[0].toUpperCase() + s.slice(1) : s; }
  function formatSeconds(s) { const t = Math.floor(s); return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, "0")}`; }

  function restoreHistory() {
    let lastCustomer = -1;
    history.forEach((e, i) => { if (e.role === "customer") lastCustomer = i; });
    history.forEach((e, i) => {
      // Only the buttons offered after the customer's last message are still a valid choice.
      addBubble(i > lastCustomer ? e : { ...e, buttons: [] }, { store: false });
    });
  }

  // ------------------------------------------------------------------ text, files

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    clearQuickReplies();
    addBubble({ role: "customer", text });
    send({ text });
  });

  fileInput.addEventListener("change", async () => {
    const file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (!file) return;
    const kind = file.type.startsWith("audio/") ? "audio" : file.type.startsWith("image/") ? "image"
      : file.type.startsWith("video/") ? "video" : "file";
    await sendBlob(file, kind, { filename: file.name, label: `${kind === "audio" ? T.voiceNote : T.file}: ${file.name}` });
  });

  async function sendBlob(blob, kind, { filename = null, duration = null, label }) {
    if (blob.size > MAX_UPLOAD) {
      addBubble({ role: "system", text: T.tooLarge(humanSize(MAX_UPLOAD)) });
      return;
    }
    const mime = blob.type || (kind === "audio" ? "audio/webm" : "application/octet-stream");
    const audioUrl = kind === "audio" ? URL.createObjectURL(blob) : null;
    clearQuickReplies();
    addBubble({ role: "customer", text: label, note: kind === "audio" }, { audioUrl });
    const attachment = { type: kind, mime, data_base64: await toBase64(blob) };
    if (filename) attachment.filename = filename;
    if (duration !== null) attachment.duration_s = Math.round(duration * 100) / 100;
    send({ attachments: [attachment] });
  }

  function toBase64(blob) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
  }

  // ------------------------------------------------------------------ voice notes

  let recorder = null;
  let recordState = "idle"; // idle | starting | recording
  let chunks = [];
  let startedAt = 0;
  let tick = null;
  let autoStop = null;

  recordButton.addEventListener("click", () => {
    if (recordState === "idle") startRecording();
    else if (recordState === "recording") stopRecording();
  });

  function pickMime() {
    const wanted = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/mp4"];
    return wanted.find((t) => MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported(t)) || "";
  }

  async function startRecording() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
      addBubble({ role: "system", text: T.noMic });
      return;
    }
    recordState = "starting";
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false } });
    } catch (err) {
      recordState = "idle";
      addBubble({ role: "system", text: T.micDenied });
      return;
    }
    const mimeType = pickMime();
    recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
    chunks = [];
    recorder.addEventListener("dataavailable", (e) => { if (e.data && e.data.size) chunks.push(e.data); });
    recorder.addEventListener("stop", () => finishRecording(stream, mimeType));
    recorder.start(250);
    startedAt = performance.now();
    recordState = "recording";
    recordButton.classList.add("recording");
    recordButton.setAttribute("aria-pressed", "true");
    recordButton.title = T.stop;
    form.classList.add("is-recording");
    timer.hidden = false;
    recordingHint.hidden = false;
    timer.textContent = "0:00";
    tick = setInterval(() => { timer.textContent = formatSeconds((performance.now() - startedAt) / 1000); }, 200);
    autoStop = setTimeout(stopRecording, MAX_RECORDING_S * 1000);
  }

  function stopRecording() {
    if (recorder && recorder.state !== "inactive") recorder.stop();
  }

  async function finishRecording(stream, mimeType) {
    const duration = (performance.now() - startedAt) / 1000;
    clearInterval(tick);
    clearTimeout(autoStop);
    for (const track of stream.getTracks()) track.stop(); // release the microphone
    recordButton.classList.remove("recording");
    recordButton.setAttribute("aria-pressed", "false");
    recordButton.title = T.record;
    form.classList.remove("is-recording");
    timer.hidden = true;
    recordingHint.hidden = true;
    const blob = new Blob(chunks, { type: (recorder && recorder.mimeType) || mimeType || "audio/webm" });
    recorder = null;
    recordState = "idle";
    if (duration < 0.5 || blob.size === 0) {
      addBubble({ role: "system", text: T.tooShort });
      return;
    }
    await sendBlob(blob, "audio", { duration, label: `${T.voiceNote} ${formatSeconds(duration)}` });
  }

  // ------------------------------------------------------------------ start

  restoreHistory();
  connect();
})();
