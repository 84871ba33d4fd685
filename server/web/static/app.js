// The try-it page: plain JavaScript, no build step, nothing loaded from elsewhere. It talks only to this
// server's OpenAI-compatible routes: /v1/models, /v1/audio/transcriptions (SSE when streaming),
// /v1/audio/translations and the /v1/realtime WebSocket.
"use strict";

(() => {
  const KEY_STORAGE = "stt.apiKey";
  const LIVE_RATE = 24000; // OpenAI Realtime's audio/pcm: 16-bit little-endian, 24 kHz, mono
  const LIVE_CHUNK_SAMPLES = 2400; // 100 ms per input_audio_buffer.append
  const SPEAKER_COLOURS = 8; // style.css: --speaker-0 .. --speaker-7

  const $ = (id) => document.getElementById(id);
  const el = {
    keyPanel: $("key-panel"), keyHint: $("key-hint"), keyForm: $("key-form"), key: $("api-key"),
    keyForget: $("key-forget"), model: $("model"), language: $("language"), words: $("words"),
    diarize: $("diarize"), speakers: $("speakers"), diarizeNote: $("diarize-note"), drop: $("drop"),
    file: $("file"), fileName: $("file-name"), record: $("record"), recordTime: $("record-time"),
    player: $("player"), submit: $("submit"), cancel: $("cancel"), status: $("status"),
    progress: $("progress"), statusText: $("status-text"), error: $("error"), transcript: $("transcript"),
    downloads: $("downloads"), segments: $("segments"), segmentsTitle: $("segments-title"), live: $("live"), liveState: $("live-state"),
    liveCaptions: $("live-captions"),
  };

  const state = {
    models: [],
    file: null, // the File to transcribe (chosen, dropped or recorded)
    fileUrl: null, // its object URL, for the player
    job: null, // {xhr, cancelled} while a request runs
    result: null, // {text, duration, language, task, diarized, segments: [{start, end, text, speaker, words}]}
    downloadUrls: [],
    stopAt: null, // where a segment's playback ends
    recorder: null,
    live: null,
  };

  // ---------------------------------------------------------------------------------------------- API key

  function apiKey() {
    try {
      return sessionStorage.getItem(KEY_STORAGE) || "";
    } catch {
      return "";
    }
  }

  function setApiKey(key) {
    try {
      if (key) sessionStorage.setItem(KEY_STORAGE, key);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch {
      // storage disabled: the key lives as long as the field's value
    }
  }

  function showKeyPanel(message) {
    el.keyPanel.hidden = false;
    el.keyPanel.classList.remove("compact");
    el.keyHint.textContent = message;
    el.key.focus();
  }

  // ---------------------------------------------------------------------------------------------- errors

  class ApiError extends Error {
    constructor(message, {status = 0, code = null, param = null, type = null} = {}) {
      super(message);
      Object.assign(this, {status, code, param, type});
    }
  }

  // An OpenAI error body {"error": {"message", "type", "param", "code"}} as an ApiError; anything else as best we can.
  function apiError(status, text) {
    let body = null;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: a proxy's page, or nothing
    }
    const error = body && typeof body === "object" ? body.error : null;
    if (error && typeof error === "object" && error.message) {
      return new ApiError(String(error.message), {status, code: error.code, param: error.param, type: error.type});
    }
    if (status === 0) return new ApiError("Could not reach the server.");
    const detail = (text || "").replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 300);
    return new ApiError(`The server answered ${status}${detail ? `: ${detail}` : "."}`, {status});
  }

  function showError(error) {
    const message = error instanceof Error ? error.message : String(error);
    el.error.replaceChildren();
    const text = document.createElement("p");
    text.className = "error-message";
    text.textContent = message;
    el.error.append(text);
    const details = [error.status ? `HTTP ${error.status}` : null, error.code, error.param && `field: ${error.param}`]
      .filter(Boolean);
    if (details.length) {
      const small = document.createElement("p");
      small.className = "error-details";
      small.textContent = details.join(" · ");
      el.error.append(small);
    }
    el.error.hidden = false;
    if (error.status === 401 || error.code === "invalid_api_key") {
      showKeyPanel(apiKey() ? "The server refused this API key: enter another." : "This server needs an API key.");
    }
  }

  function clearError() {
    el.error.hidden = true;
    el.error.replaceChildren();
  }

  // ---------------------------------------------------------------------------------------------- requests

  // One XMLHttpRequest: it reports upload progress and hands over the response text as it streams in.
  function send(method, url, {body = null, onUpload = null, onText = null, job = null} = {}) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      const key = apiKey();
      if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
      if (onUpload) {
        xhr.upload.onprogress = (e) => onUpload(e.loaded, e.lengthComputable ? e.total : 0);
        xhr.upload.onload = () => onUpload(1, 1);
      }
      if (onText) xhr.onprogress = () => {
        if (xhr.status === 200) onText(xhr.responseText);
      };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          if (onText) onText(xhr.responseText);
          resolve(xhr.responseText);
        } else {
          reject(apiError(xhr.status, xhr.responseText));
        }
      };
      xhr.onerror = () => reject(apiError(0, ""));
      xhr.onabort = () => reject(new ApiError("Cancelled.", {code: "cancelled"}));
      if (job) job.xhr = xhr;
      xhr.send(body);
    });
  }

  async function getJson(url) {
    return JSON.parse(await send("GET", url));
  }

  // Server-sent events from a growing response text: calls onEvent with each complete event's parsed data.
  function sseReader(onEvent) {
    let consumed = 0;
    const boundary = /\r\n\r\n|\n\n|\r\r/g;
    return (text) => {
      const rest = text.slice(consumed);
      let end = -1;
      boundary.lastIndex = 0;
      for (let m = boundary.exec(rest); m; m = boundary.exec(rest)) end = m.index + m[0].length;
      if (end < 0) return;
      consumed += end;
      for (const block of rest.slice(0, end).split(/\r\n\r\n|\n\n|\r\r/)) {
        const data = block.split(/\r\n|\n|\r/)
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (data) onEvent(JSON.parse(data));
      }
    };
  }

  // ---------------------------------------------------------------------------------------------- models

  async function loadModels() {
    let body;
    try {
      body = await getJson("v1/models");
    } catch (error) {
      el.model.replaceChildren(new Option("(no models: see the message)", ""));
      showError(error);
      return false;
    }
    clearError();
    // A key that works: a one-line reminder, to change or forget it.
    el.keyPanel.hidden = !apiKey();
    el.keyPanel.classList.add("compact");
    if (apiKey()) el.keyHint.textContent = "Using the API key given in this tab.";
    const previous = el.model.value;
    // Aliases (whisper-1) name a model already listed under its own id.
    state.models = (body.data || []).filter((m) => m.kind !== "diarization" && !m.alias_of);
    el.model.replaceChildren(...state.models.map((m) => {
      const label = `${m.loaded ? "●" : "○"} ${m.id}${m.default ? " (default)" : ""}${m.language ? ` · ${m.language}` : ""}`;
      const option = new Option(label, m.id);
      option.dataset.loaded = String(Boolean(m.loaded));
      return option;
    }));
    const chosen = state.models.find((m) => m.id === previous) || state.models.find((m) => m.default) || state.models[0];
    if (chosen) {
      el.model.value = chosen.id;
      if (!previous) applyModelLanguage();
    }
    const diarizers = (body.data || []).filter((m) => m.kind === "diarization");
    el.diarize.disabled = diarizers.length === 0;
    el.diarizeNote.hidden = diarizers.length !== 0;
    el.diarizeNote.textContent = diarizers.length ? "" : "Diarization is turned off on this server.";
    updateControls();
    return true;
  }

  async function loadLanguages() {
    try {
      const languages = await getJson("ui/languages.json");
      const options = Object.entries(languages)
        .sort((a, b) => a[1].localeCompare(b[1]))
        .map(([code, name]) => new Option(`${name[0].toUpperCase()}${name.slice(1)} (${code})`, code));
      el.language.append(...options);
      applyModelLanguage();
    } catch {
      // the picker keeps "Detect automatically"
    }
  }

  function selectedModel() {
    return state.models.find((m) => m.id === el.model.value) || null;
  }

  // A model made for one language (tiny-en: en) starts with that language chosen.
  function applyModelLanguage() {
    const model = selectedModel();
    if (model && model.language && [...el.language.options].some((o) => o.value === model.language)) {
      el.language.value = model.language;
    }
  }

  // ---------------------------------------------------------------------------------------------- options

  function task() {
    return document.querySelector('input[name="task"]:checked').value;
  }

  function updateControls() {
    const translating = task() === "translate";
    const diarizeAvailable = !el.diarizeNote.textContent;
    el.diarize.disabled = translating || !diarizeAvailable;
    el.speakers.disabled = el.diarize.disabled || !el.diarize.checked;
    el.words.disabled = translating || el.diarize.checked; // diarized_json carries no words
    el.language.disabled = translating;
    const busy = Boolean(state.job);
    el.submit.disabled = busy || Boolean(state.recorder) || !state.file || !el.model.value;
    el.submit.textContent = translating ? "Translate" : "Transcribe";
    el.cancel.hidden = !busy;
    el.record.disabled = busy;
    el.file.disabled = busy;
  }

  // ---------------------------------------------------------------------------------------------- file

  function setFile(file) {
    if (state.job) return; // one file at a time: its segments play from its own audio
    resetResult();
    if (state.fileUrl) URL.revokeObjectURL(state.fileUrl);
    state.file = file;
    state.fileUrl = file ? URL.createObjectURL(file) : null;
    el.fileName.textContent = file ? `${file.name} · ${formatBytes(file.size)}` : "";
    if (file) {
      el.player.src = state.fileUrl;
      el.player.hidden = false;
    } else {
      el.player.removeAttribute("src");
      el.player.hidden = true;
    }
    clearError();
    updateControls();
  }

  function formatBytes(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }

  // ---------------------------------------------------------------------------------------------- transcription

  function mediaDuration() {
    const d = el.player.duration;
    return Number.isFinite(d) && d > 0 ? d : null;
  }

  function setStatus(text, fraction) {
    el.status.hidden = false;
    el.statusText.textContent = text;
    if (fraction === null || fraction === undefined) el.progress.removeAttribute("value");
    else el.progress.value = Math.max(0, Math.min(1, fraction));
  }

  function clearStatus() {
    el.status.hidden = true;
  }

  function baseName() {
    const name = state.file ? state.file.name : "transcript";
    return name.replace(/\.[^.]+$/, "") || "transcript";
  }

  async function transcribe() {
    if (!state.file || state.job) return;
    clearError();
    resetResult();
    const job = {xhr: null, started: performance.now()};
    state.job = job;
    updateControls();
    const translating = task() === "translate";
    const diarized = !translating && el.diarize.checked;
    const words = !translating && !diarized && el.words.checked;
    const streaming = !translating && !diarized;
    const form = new FormData();
    form.append("file", state.file, state.file.name);
    form.append("model", el.model.value || "whisper-1");
    if (!translating && el.language.value) form.append("language", el.language.value);
    let url = "v1/audio/transcriptions";
    if (translating) {
      url = "v1/audio/translations";
      form.append("response_format", "verbose_json");
    } else if (diarized) {
      form.append("response_format", "diarized_json");
      if (el.speakers.value) form.append("num_speakers", el.speakers.value);
    } else {
      form.append("response_format", "verbose_json");
      form.append("stream", "true");
      form.append("timestamp_granularities[]", "segment");
      if (words) form.append("timestamp_granularities[]", "word");
    }
    const result = {
      text: "", duration: mediaDuration(), language: null, task: translating ? "translate" : "transcribe",
      diarized, words, segments: [], raw: null,
    };
    state.result = result;
    let ticker = null;
    const working = () => {
      const seconds = Math.round((performance.now() - job.started) / 1000);
      const done = result.segments.length ? result.segments[result.segments.length - 1].end : 0;
      const total = mediaDuration();
      if (streaming && total && done) {
        setStatus(`${translating ? "Translating" : "Transcribing"}… ${clock(done)} of ${clock(total)}`, done / total);
      } else {
        setStatus(`${translating ? "Translating" : diarized ? "Transcribing and labelling speakers" : "Transcribing"}… ${seconds} s`, null);
      }
    };
    const onUpload = (loaded, total) => {
      if (total && loaded < total) setStatus(`Uploading… ${Math.round((100 * loaded) / total)}%`, loaded / total);
      else if (!ticker) {
        working();
        ticker = setInterval(working, 500);
      }
    };
    let streamHadTimes = true;
    const onEvent = (event) => {
      if (event.type === "transcript.text.delta") {
        if (typeof event.start !== "number") streamHadTimes = false;
        const segment = {
          start: typeof event.start === "number" ? event.start : null,
          end: typeof event.end === "number" ? event.end : null,
          text: event.delta.trim(), speaker: null,
          words: Array.isArray(event.words) ? event.words : [],
        };
        result.segments.push(segment);
        result.text += event.delta;
        showTranscript(result.text.trim());
        appendSegment(segment, result.segments.length - 1);
        working();
      } else if (event.type === "transcript.text.done") {
        result.text = event.text;
        result.done = true;
      }
    };
    try {
      setStatus("Uploading…", 0);
      const text = await send("POST", url, {
        body: form, onUpload, onText: streaming ? sseReader(onEvent) : null, job,
      });
      if (streaming) {
        if (!result.done) throw new ApiError("The stream ended before the transcript was complete.");
        if (!streamHadTimes && result.segments.length) {
          // A server whose stream carries no segment times: ask once more for them.
          setStatus("Fetching segment times…", null);
          form.delete("stream");
          const full = normalizeResult(JSON.parse(await send("POST", url, {body: form, job})), result);
          Object.assign(result, full);
        }
        result.raw = verboseJson(result);
      } else {
        Object.assign(result, normalizeResult(JSON.parse(text), result));
      }
      renderResult(result);
      // Where the segment times came from: the stream itself, a second request, or the one response.
      el.segments.dataset.source = !streaming ? "response" : streamHadTimes ? "stream" : "second-request";
      loadModels(); // the model is loaded now
    } catch (error) {
      if (error.code === "cancelled" && result.segments.length) {
        showError(new ApiError("Cancelled: the transcript above is partial."));
      } else if (error.code !== "cancelled") {
        showError(error);
      }
      if (!result.segments.length) resetResult();
    } finally {
      if (ticker) clearInterval(ticker);
      state.job = null;
      clearStatus();
      updateControls();
    }
  }

  // A verbose_json or diarized_json body as the page's result.
  function normalizeResult(body, base) {
    const segments = (body.segments || []).map((s) => ({
      start: s.start, end: s.end, text: String(s.text || "").trim(), speaker: s.speaker || null, words: [],
    }));
    for (const word of body.words || []) {
      const owner = segments.find((s) => word.start >= s.start - 0.01 && word.start < s.end) ||
        segments.filter((s) => s.start <= word.start).pop();
      if (owner) owner.words.push(word);
    }
    return {
      ...base, text: body.text || "", duration: body.duration || base.duration, language: body.language || null,
      segments, raw: body, done: true,
    };
  }

  function verboseJson(result) {
    const body = {
      task: result.task, language: result.language, duration: result.duration, text: result.text.trim(),
      segments: result.segments.map((s, id) => ({id, start: s.start, end: s.end, text: s.text})),
    };
    if (result.words) body.words = result.segments.flatMap((s) => s.words);
    return body;
  }

  function cancel() {
    if (state.job && state.job.xhr) state.job.xhr.abort();
  }

  // ---------------------------------------------------------------------------------------------- result

  function resetResult() {
    state.result = null;
    el.transcript.textContent = "";
    el.segments.replaceChildren();
    delete el.segments.dataset.source;
    el.segmentsTitle.hidden = true;
    el.downloads.hidden = true;
    for (const url of state.downloadUrls) URL.revokeObjectURL(url);
    state.downloadUrls = [];
    speakerIndex.clear();
  }

  function showTranscript(text) {
    el.transcript.textContent = text;
  }

  const speakerIndex = new Map();

  function speakerColour(speaker) {
    if (!speakerIndex.has(speaker)) speakerIndex.set(speaker, speakerIndex.size);
    return speakerIndex.get(speaker) % SPEAKER_COLOURS;
  }

  function appendSegment(segment, index) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "segment";
    button.dataset.index = String(index);
    if (segment.start !== null) {
      button.dataset.start = String(segment.start);
      button.dataset.end = String(segment.end);
      const time = document.createElement("span");
      time.className = "time";
      time.dataset.testid = "segment-time";
      time.textContent = `${clock(segment.start)} – ${clock(segment.end)}`;
      button.append(time);
    }
    if (segment.speaker) {
      const colour = speakerColour(segment.speaker);
      button.dataset.speaker = segment.speaker;
      button.classList.add(`speaker-${colour}`);
      const speaker = document.createElement("span");
      speaker.className = "speaker";
      speaker.dataset.testid = "segment-speaker";
      speaker.textContent = `Speaker ${segment.speaker}`;
      button.append(speaker);
    }
    const text = document.createElement("span");
    text.className = "text";
    if (segment.words && segment.words.length) {
      for (const word of segment.words) {
        const span = document.createElement("span");
        span.className = "word";
        span.dataset.start = String(word.start);
        span.title = `${clock(word.start)} – ${clock(word.end)}`;
        span.textContent = `${String(word.word).trim()} `;
        text.append(span);
      }
    } else {
      text.textContent = segment.text;
    }
    button.append(text);
    button.setAttribute("aria-label", `${segment.start !== null ? `${clock(segment.start)} to ${clock(segment.end)}, ` : ""}` +
      `${segment.speaker ? `speaker ${segment.speaker}: ` : ""}${segment.text}. Play.`);
    item.append(button);
    el.segments.append(item);
    el.segmentsTitle.hidden = false;
  }

  function renderResult(result) {
    showTranscript(result.text.trim());
    el.segments.replaceChildren();
    speakerIndex.clear();
    result.segments.forEach((segment, index) => appendSegment(segment, index));
    buildDownloads(result);
  }

  function playFrom(start, end) {
    if (!state.fileUrl) return;
    el.player.currentTime = start;
    state.stopAt = end;
    const playing = el.player.play();
    if (playing) playing.catch(() => {}); // a browser that refuses to autoplay leaves the player at the spot
  }

  function onSegmentClick(event) {
    const button = event.target.closest("button.segment");
    if (!button || button.dataset.start === undefined) return;
    const word = event.target.closest(".word");
    if (word) playFrom(Number(word.dataset.start), Number(button.dataset.end));
    else playFrom(Number(button.dataset.start), Number(button.dataset.end));
  }

  function onTimeUpdate() {
    const t = el.player.currentTime;
    if (state.stopAt !== null && t >= state.stopAt) {
      el.player.pause();
      state.stopAt = null;
    }
    for (const button of el.segments.querySelectorAll("button.segment[data-start]")) {
      const current = t >= Number(button.dataset.start) && t < Number(button.dataset.end) && !el.player.paused;
      button.classList.toggle("playing", current);
    }
  }

  // ---------------------------------------------------------------------------------------------- downloads

  function clock(seconds) {
    const s = Math.max(0, seconds || 0);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = (s % 60).toFixed(1).padStart(4, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
  }

  function timestamp(seconds, separator) {
    const ms = Math.round(Math.max(0, seconds) * 1000);
    const h = Math.floor(ms / 3600000);
    const m = Math.floor((ms % 3600000) / 60000);
    const s = Math.floor((ms % 60000) / 1000);
    const pad = (n, w = 2) => String(n).padStart(w, "0");
    return `${pad(h)}:${pad(m)}:${pad(s)}${separator}${pad(ms % 1000, 3)}`;
  }

  function cues(result) {
    return result.segments.filter((s) => s.text && s.start !== null);
  }

  function toSrt(result) {
    return cues(result).map((s, i) =>
      `${i + 1}\n${timestamp(s.start, ",")} --> ${timestamp(s.end, ",")}\n` +
      `${s.speaker ? `[${s.speaker}] ` : ""}${s.text}\n`).join("\n");
  }

  function toVtt(result) {
    const body = cues(result).map((s) =>
      `${timestamp(s.start, ".")} --> ${timestamp(s.end, ".")}\n${s.speaker ? `<v ${s.speaker}>` : ""}${s.text}\n`);
    return `WEBVTT\n\n${body.join("\n")}`;
  }

  // The transcript's speaker turns: neighbouring segments of one speaker joined.
  function speakerTurns(result) {
    const turns = [];
    for (const s of cues(result)) {
      const last = turns[turns.length - 1];
      if (last && last.speaker === s.speaker) {
        last.end = Math.max(last.end, s.end);
        last.text = `${last.text} ${s.text}`.trim();
      } else {
        turns.push({speaker: s.speaker, start: s.start, end: s.end, text: s.text});
      }
    }
    return turns;
  }

  // One {"speaker", "start", "end", "text"} line per speaker turn, as the server's response_format=jsonl.
  function toJsonl(result) {
    return speakerTurns(result).map((t) => `${JSON.stringify(t)}\n`).join("");
  }

  // One RTTM SPEAKER line (the ten standard fields) per speaker turn, as POST /v1/audio/diarizations answers;
  // only a transcript whose speakers are labelled has one.
  function toRttm(result) {
    const fileId = baseName().replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+|[._]+$/g, "").slice(0, 64) || "audio";
    const field = (speaker) => String(speaker).replace(/[^A-Za-z0-9._-]+/g, "_") || "speaker";
    return speakerTurns(result)
      .filter((t) => t.speaker && t.end > t.start)
      .map((t) => `SPEAKER ${fileId} 1 ${t.start.toFixed(3)} ${(t.end - t.start).toFixed(3)} <NA> <NA> ` +
        `${field(t.speaker)} <NA> <NA>\n`).join("");
  }

  function buildDownloads(result) {
    const labelled = result.segments.some((s) => s.speaker);
    const files = {
      txt: [`${result.text.trim()}\n`, "text/plain"],
      srt: [toSrt(result), "application/x-subrip"],
      vtt: [toVtt(result), "text/vtt"],
      json: [`${JSON.stringify(result.raw || verboseJson(result), null, 2)}\n`, "application/json"],
      jsonl: [toJsonl(result), "application/jsonl"],
      rttm: [labelled ? toRttm(result) : "", "text/plain"],
    };
    for (const link of el.downloads.querySelectorAll("a[data-format]")) {
      if (link.dataset.format === "rttm") link.hidden = !labelled;
      if (link.hidden) continue;
      const [content, type] = files[link.dataset.format];
      const url = URL.createObjectURL(new Blob([content], {type: `${type};charset=utf-8`}));
      state.downloadUrls.push(url);
      link.href = url;
      link.download = `${baseName()}.${link.dataset.format}`;
    }
    el.downloads.hidden = false;
  }

  // ---------------------------------------------------------------------------------------------- microphone

  function microphoneAvailable() {
    if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) return true;
    showError(new ApiError("The microphone needs a secure page: open this page over https, or as localhost."));
    return false;
  }

  async function toggleRecording() {
    if (state.recorder) {
      state.recorder.stop();
      return;
    }
    if (!microphoneAvailable()) return;
    clearError();
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({audio: true});
    } catch (error) {
      showError(new ApiError(`No microphone: ${error.message || error.name}.`));
      return;
    }
    const type = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/mp4"]
      .find((t) => window.MediaRecorder && MediaRecorder.isTypeSupported(t));
    const recorder = new MediaRecorder(stream, type ? {mimeType: type} : undefined);
    const chunks = [];
    const started = performance.now();
    const ticker = setInterval(() => {
      el.recordTime.textContent = `Recording… ${clock((performance.now() - started) / 1000)}`;
    }, 250);
    recorder.ondataavailable = (e) => {
      if (e.data && e.data.size) chunks.push(e.data);
    };
    recorder.onstop = () => {
      clearInterval(ticker);
      for (const track of stream.getTracks()) track.stop();
      const mime = recorder.mimeType || type || "audio/webm";
      const extension = mime.includes("ogg") ? "ogg" : mime.includes("mp4") ? "m4a" : "webm";
      const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
      state.recorder = null;
      setFile(new File(chunks, `recording-${stamp}.${extension}`, {type: mime.split(";")[0]}));
      el.record.textContent = "● Record";
      el.record.setAttribute("aria-pressed", "false");
      el.record.classList.remove("recording");
      el.recordTime.textContent = `Recorded ${clock((performance.now() - started) / 1000)}`;
      el.submit.focus();
    };
    recorder.start(250);
    state.recorder = recorder;
    updateControls();
    el.record.textContent = "■ Stop recording";
    el.record.setAttribute("aria-pressed", "true");
    el.record.classList.add("recording");
  }

  // ---------------------------------------------------------------------------------------------- live captions

  function liveUrl(model) {
    const url = new URL("v1/realtime", document.baseURI);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("intent", "transcription");
    if (model) url.searchParams.set("model", model);
    return url.href;
  }

  function base64Pcm16(samples) {
    const bytes = new Uint8Array(samples.length * 2);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      view.setInt16(2 * i, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  }

  function liveLine(itemId) {
    let line = el.liveCaptions.querySelector(`p[data-item="${CSS.escape(itemId)}"]`);
    if (!line) {
      line = document.createElement("p");
      line.dataset.item = itemId;
      line.className = "pending";
      el.liveCaptions.append(line);
    }
    return line;
  }

  function onLiveEvent(live, event) {
    switch (event.type) {
      case "session.created":
      case "session.updated":
        el.liveState.textContent = "Listening…";
        break;
      case "input_audio_buffer.speech_started":
        liveLine(event.item_id).classList.add("speaking");
        el.liveState.textContent = "Hearing speech…";
        break;
      case "input_audio_buffer.speech_stopped":
        el.liveState.textContent = "Listening…";
        break;
      case "conversation.item.input_audio_transcription.delta": {
        const line = liveLine(event.item_id);
        line.textContent += event.delta;
        break;
      }
      case "conversation.item.input_audio_transcription.completed": {
        const line = liveLine(event.item_id);
        line.textContent = event.transcript;
        line.className = "final";
        if (!event.transcript.trim()) line.remove();
        live.pending = Math.max(0, live.pending - 1);
        if (live.stopping && live.pending === 0) live.close();
        break;
      }
      case "input_audio_buffer.committed":
        live.pending += 1;
        break;
      case "conversation.item.input_audio_transcription.failed": {
        const line = liveLine(event.item_id);
        line.className = "failed";
        line.textContent = `(not transcribed: ${event.error && event.error.message})`;
        live.pending = Math.max(0, live.pending - 1);
        break;
      }
      case "error":
        showError(new ApiError(event.error.message, {code: event.error.code, param: event.error.param}));
        break;
      default:
        break;
    }
    el.liveCaptions.scrollTop = el.liveCaptions.scrollHeight;
  }

  async function startLive() {
    if (!microphoneAvailable()) return;
    clearError();
    // A quick check first: a browser cannot tell why a WebSocket handshake failed, the HTTP routes can.
    if (!(await loadModels())) return;
    const model = el.model.value;
    const live = {
      socket: null, context: null, stream: null, node: null, buffer: [], buffered: 0, pending: 0,
      stopping: false, closed: false, close: null,
    };
    state.live = live;
    el.live.disabled = true;
    el.liveState.textContent = "Connecting…";
    try {
      live.stream = await navigator.mediaDevices.getUserMedia({
        audio: {channelCount: 1, echoCancellation: true, noiseSuppression: true},
      });
      live.context = new AudioContext({sampleRate: LIVE_RATE});
      await live.context.audioWorklet.addModule("ui/pcm-capture.js");
      const protocols = ["realtime"];
      if (apiKey()) protocols.push(`openai-insecure-api-key.${apiKey()}`);
      live.socket = new WebSocket(liveUrl(model), protocols);
    } catch (error) {
      stopLiveNow(live);
      showError(new ApiError(`Live captions could not start: ${error.message || error.name}.`));
      return;
    }
    const socket = live.socket;
    live.close = () => stopLiveNow(live);
    socket.onopen = () => {
      const input = {
        format: {type: "audio/pcm", rate: LIVE_RATE},
        transcription: {model: model || "whisper-1"},
        turn_detection: {type: "server_vad", silence_duration_ms: 500},
      };
      if (el.language.value && !el.language.disabled) input.transcription.language = el.language.value;
      socket.send(JSON.stringify({type: "session.update", session: {type: "transcription", audio: {input}}}));
      const source = live.context.createMediaStreamSource(live.stream);
      live.node = new AudioWorkletNode(live.context, "pcm-capture");
      live.node.port.onmessage = (e) => sendLiveAudio(live, e.data);
      source.connect(live.node);
      live.node.connect(live.context.destination); // silent: it only keeps the graph pulling audio
      el.live.disabled = false;
      el.live.textContent = "Stop live captions";
      el.live.setAttribute("aria-pressed", "true");
      el.live.classList.add("recording");
    };
    socket.onmessage = (e) => {
      try {
        onLiveEvent(live, JSON.parse(e.data));
      } catch {
        // not an event this page knows
      }
    };
    socket.onclose = (e) => {
      const unexpected = !live.stopping && !live.closed;
      stopLiveNow(live);
      if (unexpected) {
        showError(new ApiError(e.code === 1006
          ? "The live session could not connect or was cut off (is the API key right?)."
          : `The live session ended (${e.code}${e.reason ? `: ${e.reason}` : ""}).`));
      }
    };
  }

  function sendLiveAudio(live, samples) {
    if (!live.socket || live.socket.readyState !== WebSocket.OPEN || live.stopping) return;
    live.buffer.push(samples);
    live.buffered += samples.length;
    if (live.buffered < LIVE_CHUNK_SAMPLES) return;
    const chunk = new Float32Array(live.buffered);
    let offset = 0;
    for (const part of live.buffer) {
      chunk.set(part, offset);
      offset += part.length;
    }
    live.buffer = [];
    live.buffered = 0;
    live.socket.send(JSON.stringify({type: "input_audio_buffer.append", audio: base64Pcm16(chunk)}));
  }

  // Stop the microphone, then send a moment of silence so that the server's VAD ends the turn in progress,
  // and close once its transcript came (or after a few seconds).
  function stopLive(live) {
    if (!live || live.stopping) return;
    live.stopping = true;
    el.live.disabled = true;
    el.liveState.textContent = "Finishing…";
    releaseAudio(live);
    const socket = live.socket;
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({type: "input_audio_buffer.append", audio: base64Pcm16(new Float32Array(LIVE_RATE))}));
      setTimeout(() => stopLiveNow(live), 4000);
      if (!el.liveCaptions.querySelector("p.speaking:not(.final)")) setTimeout(() => live.pending || stopLiveNow(live), 1500);
    } else {
      stopLiveNow(live);
    }
  }

  function releaseAudio(live) {
    if (live.stream) for (const track of live.stream.getTracks()) track.stop();
    if (live.node) live.node.port.onmessage = null;
    if (live.context && live.context.state !== "closed") live.context.close().catch(() => {});
    live.stream = null;
  }

  function stopLiveNow(live) {
    if (live.closed) return;
    live.closed = true;
    releaseAudio(live);
    if (live.socket && live.socket.readyState <= WebSocket.OPEN) live.socket.close(1000);
    for (const line of el.liveCaptions.querySelectorAll("p.pending")) if (!line.textContent.trim()) line.remove();
    if (state.live === live) state.live = null;
    el.live.disabled = false;
    el.live.textContent = "Start live captions";
    el.live.setAttribute("aria-pressed", "false");
    el.live.classList.remove("recording");
    el.liveState.textContent = "";
  }

  // ---------------------------------------------------------------------------------------------- wiring

  function wire() {
    el.key.value = apiKey();
    el.keyForm.addEventListener("submit", (e) => {
      e.preventDefault();
      setApiKey(el.key.value.trim());
      loadModels();
    });
    el.keyForget.addEventListener("click", () => {
      setApiKey("");
      el.key.value = "";
      loadModels();
    });
    el.model.addEventListener("change", applyModelLanguage);
    for (const radio of document.querySelectorAll('input[name="task"]')) radio.addEventListener("change", updateControls);
    el.diarize.addEventListener("change", updateControls);
    el.file.addEventListener("change", () => setFile(el.file.files[0] || null));
    for (const name of ["dragenter", "dragover"]) {
      el.drop.addEventListener(name, (e) => {
        e.preventDefault();
        el.drop.classList.add("over");
      });
    }
    for (const name of ["dragleave", "drop"]) el.drop.addEventListener(name, () => el.drop.classList.remove("over"));
    el.drop.addEventListener("drop", (e) => {
      e.preventDefault();
      const file = e.dataTransfer && e.dataTransfer.files[0];
      if (file) setFile(file);
    });
    // A file dropped anywhere else must not replace the page.
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => e.preventDefault());
    el.submit.addEventListener("click", transcribe);
    el.cancel.addEventListener("click", cancel);
    el.record.addEventListener("click", toggleRecording);
    el.segments.addEventListener("click", onSegmentClick);
    el.player.addEventListener("timeupdate", onTimeUpdate);
    el.live.addEventListener("click", () => (state.live ? stopLive(state.live) : startLive()));
    updateControls();
  }

  wire();
  loadLanguages();
  loadModels();
})();
