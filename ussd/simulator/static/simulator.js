// The #121# simulator's page: a handset whose every move the server plays through the chosen
// gateway's real wire format (POST api/move). No framework, no build step, nothing external.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  session: null,   // the gateway's session id of the dialogue on screen
  inputs: [],      // every input sent in it, one per hop
  live: false,     // the dialogue goes on (not ended, not left, not expired)
  busy: false,     // a move is on its way: the next one is built on its outcome
  ttl: 0,
  timer: null,
  commands: [],    // one `ussd sim` line per session played on this page
};

function sessionId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function loadConfig() {
  const response = await fetch("api/config", { headers: { Accept: "application/json" } });
  const config = await response.json();
  const gateway = $("gateway");
  for (const name of config.dialects) {
    gateway.append(new Option(name, name));
  }
  const codes = $("codes");
  for (const code of config.codes) {
    codes.append(new Option(code));
    const base = code.replace(/#$/, "");
    codes.append(new Option(base + "*1#"));
  }
  if (config.demo.length) {
    $("demo").hidden = false;
    for (const row of config.demo) {
      const line = document.createElement("tr");
      for (const value of [row.msisdn, row.profile, row.language, row.shows]) {
        const cell = document.createElement("td");
        cell.textContent = value;
        line.append(cell);
      }
      line.firstChild.addEventListener("click", () => { $("msisdn").value = row.msisdn; });
      $("demo-rows").append(line);
    }
  }
}

function setLive(live) {
  state.live = live;
  for (const id of ["input", "send", "hangup", "timeout"]) {
    $(id).disabled = !live;
  }
  for (const key of document.querySelectorAll(".keypad button")) {
    key.disabled = !live;
  }
  // Every hop carries them: changed mid-session, the next hop would go out on the same session
  // id for another number, code or gateway (to Flares, "Demande non reconnue").
  for (const id of ["msisdn", "gateway", "code"]) {
    $(id).disabled = live;
  }
  if (live) {
    $("input").focus();
  }
}

function countDown(seconds) {
  clearInterval(state.timer);
  state.ttl = seconds;
  const show = () => {
    $("ttl").textContent = state.ttl > 0 ? `TTL ${state.ttl} s` : "TTL ran out: session expired";
  };
  show();
  state.timer = setInterval(() => {
    state.ttl -= 1;
    show();
    if (state.ttl <= 0) {
      clearInterval(state.timer);
      setLive(false);
      $("kind").textContent = "expired";
      $("kind").className = "kind end";
    }
  }, 1000);
}

function showWire(exchanges) {
  const wire = $("wire");
  wire.replaceChildren();
  for (const exchange of exchanges) {
    for (const [text, kind] of [[exchange.request, "request-text"], [exchange.reply, "reply-text"]]) {
      const block = document.createElement("pre");
      block.className = kind;
      block.dataset.testid = kind;
      block.textContent = text;
      wire.append(block);
    }
  }
}

function note(sent, shown) {
  const item = document.createElement("li");
  const what = document.createElement("span");
  what.className = "sent";
  what.textContent = sent;
  item.append(what, " \u2192 " + shown);
  $("log").append(item);
}

function remember(command) {
  state.commands[state.commands.length - 1] = command;
  const text = "#!/bin/sh\n# The sessions played in the #121# simulator, replayed by `ussd sim`\n" +
    "# (credentials: the server's USSD_<GATEWAY>_TOKEN or _BASIC_AUTH in the environment).\n" +
    state.commands.join("\n") + "\n";
  $("transcript").href = "data:text/x-shellscript;charset=utf-8," + encodeURIComponent(text);
}

const MOVES = { dial: "Dial", send: "Send", hang_up: "Hang up", time_out: "Time out" };

// Play a move in `session` with `inputs` (every input sent in it, this move's last). They
// become the page's own only once the move is played: a refused one leaves the session as it
// was, to go on with (an input kept after its refusal made every later move refused too).
async function move(action, sent, session = state.session, inputs = state.inputs) {
  if (state.busy) {
    return;
  }
  state.busy = true;
  $("error").textContent = "";
  const body = {
    gateway: $("gateway").value, msisdn: $("msisdn").value.trim(), code: $("code").value.trim(),
    session, inputs, action,
  };
  let answer;
  try {
    const response = await fetch("api/move", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (!response.ok) {
      const refusal = await response.json().catch(() => ({}));  // a proxy's may be HTML
      $("error").textContent = `${MOVES[action]} refused: ` +
        (refusal.error || `HTTP ${response.status}`);
      return;
    }
    answer = await response.json();
  } catch (error) {
    $("error").textContent = `${MOVES[action]} failed: ${error.message || error}`;
    return;
  } finally {
    state.busy = false;
  }
  if (action === "dial") {
    begin(session);
  }
  state.inputs = inputs;
  showWire(answer.wire);
  remember(answer.command);
  if (answer.screen === null) {  // hung up, timed out: the gateway's report, acknowledged
    clearInterval(state.timer);
    const left = action === "hang_up" ? "(hung up)" : "(timed out)";
    $("screen").textContent = left;
    $("kind").textContent = "left";
    $("kind").className = "kind end";
    $("meta").textContent = "";
    $("ttl").textContent = "";
    note(left, "reported to the server");
    setLive(false);
    return;
  }
  $("screen").textContent = answer.screen;
  $("kind").textContent = answer.end ? "END" : "CON";
  $("kind").className = "kind " + (answer.end ? "end" : "con");
  const page = answer.pages > 1 ? ` \u00b7 page ${answer.page}/${answer.pages}` : "";
  $("meta").textContent = `${answer.length}/${answer.limit} \u00b7 ${answer.alphabet}${page}`;
  note(sent, (answer.end ? "END " : "CON ") + answer.screen.split("\n")[0]);
  if (answer.end) {
    clearInterval(state.timer);
    $("ttl").textContent = "session over";
    setLive(false);
  } else {
    setLive(true);
    countDown(answer.ttl);
  }
}

function begin(session) {
  state.session = session;
  state.commands.push("");
  const header = document.createElement("li");
  header.className = "session";
  header.textContent = `session ${session}: ${$("msisdn").value.trim()} through ` +
    $("gateway").value;
  $("log").append(header);
}

function dial(event) {
  event.preventDefault();
  move("dial", $("code").value.trim(), sessionId(), []);
}

function send(event) {
  event.preventDefault();
  if (!state.live || state.busy) {
    return;
  }
  const text = $("input").value;
  $("input").value = "";
  move("send", text === "" ? "(empty)" : text, state.session, [...state.inputs, text]);
}

function keypad() {
  for (const key of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"]) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = key;
    button.disabled = true;
    button.dataset.testid = "key-" + ({ "*": "star", "#": "hash" }[key] || key);
    button.addEventListener("click", () => {
      $("input").value += key;
      $("input").focus();
    });
    $("keypad").append(button);
  }
}

keypad();
$("setup").addEventListener("submit", dial);
$("reply").addEventListener("submit", send);
$("hangup").addEventListener("click", () => move("hang_up", "hang up"));
$("timeout").addEventListener("click", () => move("time_out", "time out"));
loadConfig().catch((error) => { $("error").textContent = "cannot load: " + error; });
