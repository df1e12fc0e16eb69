// pi-kernel's kernel tools, loaded by the kernel's own Pi with `pi -e` (never installed into
// the user's ~/.pi).  Each tool call is forwarded over a Unix socket to the Jupyter kernel
// that started this Pi, which runs it on its main thread inside the running cell and answers.
// Before any tool runs (Pi's own too), calls the user wants to approve are put to them in
// the running cell, through the same socket (Pi's `tool_call` hook, which can block a call).
// When the notebook has a budget, the run's spending so far is checked before each tool and
// each model call, and the run is aborted once the kernel says it is over.
// The socket's path comes in the environment; the secret waits in a 0600 file (never in an
// environment: /proc keeps a process's first one readable), read and removed here at once.
// Both variables are taken out of the environment, so the commands Pi's own tools run (bash)
// inherit neither.  Kept on globalThis, so that a reload of the extensions in this process
// (the file is gone by then) finds them again.  Names must match catalog.py.
import * as fs from "node:fs";
import * as net from "node:net";

const KEPT = Symbol.for("pi-kernel.tools");
globalThis[KEPT] ??= readChannel();
const { socket: SOCKET, secret: SECRET } = globalThis[KEPT];

function readChannel() {
  const socket = process.env.PI_KERNEL_TOOLS_SOCKET;
  const file = process.env.PI_KERNEL_TOOLS_SECRET_FILE;
  delete process.env.PI_KERNEL_TOOLS_SOCKET;
  delete process.env.PI_KERNEL_TOOLS_SECRET_FILE;
  if (!socket || !file) return {};
  try {
    const secret = fs.readFileSync(file, "utf8");
    fs.rmSync(file, { force: true });
    return { socket, secret };
  } catch {
    return {}; // no secret: nothing can be asked of the kernel, so nothing is offered
  }
}

const NAMESPACE_NOTE =
  "This is the user's own live Jupyter kernel: the same namespace as their notebook cells, " +
  "so what you define or change stays there and they see it.";

const TOOLS = [
  {
    name: "notebook_python",
    label: "Python in the notebook",
    description:
      "Run Python code in the user's running Jupyter kernel and return what it printed, the " +
      "value of its last expression (as repr) and any error with its traceback. " +
      NAMESPACE_NOTE +
      " Its output (text, tables, plots) appears in the user's notebook as it runs. Use it to " +
      "inspect or compute with the user's data; do not redefine or delete their variables, " +
      "and do not start long computations, unless they ask.",
    promptSnippet: "Run Python in the user's live notebook kernel (their variables, their data)",
    parameters: {
      type: "object",
      properties: { code: { type: "string", description: "Python code (IPython syntax)" } },
      required: ["code"],
    },
  },
  {
    name: "notebook_history",
    label: "Notebook history",
    description:
      "Read the cells the user ran in this Jupyter kernel, in order: each cell's code, the repr " +
      "of its result and its error with the traceback, shortened when long. By default the " +
      "last 10 cells; or give first and last (execution counts) for a range. " +
      NAMESPACE_NOTE,
    parameters: {
      type: "object",
      properties: {
        count: { type: "integer", description: "how many of the most recent cells (default 10)" },
        first: { type: "integer", description: "first execution count of a range" },
        last: { type: "integer", description: "last execution count of a range" },
      },
    },
  },
  {
    name: "notebook_variables",
    label: "Notebook variables",
    description:
      "List the user's variables in this Jupyter kernel: name, type and a short summary (shape " +
      "and dtypes of DataFrames and arrays, length of containers, value of small scalars). " +
      "Nothing is called on them beyond that. " +
      NAMESPACE_NOTE,
    parameters: { type: "object", properties: {} },
  },
  {
    name: "notebook_propose_cell",
    label: "Propose a cell",
    description:
      "Put Python code into a new cell below the one running now, for the user to read, edit " +
      "and run themselves; it is not run. One proposal per turn: a later one replaces it.",
    parameters: {
      type: "object",
      properties: { code: { type: "string", description: "the new cell's code" } },
      required: ["code"],
    },
  },
];
const NAMES = new Set(TOOLS.map((tool) => tool.name));
const BRANCH_COMMAND = "pi-kernel-branch";
const OFFER_COMMAND = "pi-kernel-offer";

// One request, one reply, one connection: the kernel answers when the call is done.
function ask(request, signal) {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(SOCKET);
    const chunks = [];
    const onAbort = () => {
      socket.destroy();
      reject(new Error("aborted"));
    };
    if (signal) {
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
    }
    socket.on("connect", () => socket.write(JSON.stringify({ ...request, secret: SECRET }) + "\n"));
    socket.on("data", (chunk) => chunks.push(chunk));
    socket.on("error", (error) => reject(new Error(`the notebook kernel is not reachable: ${error.message}`)));
    socket.on("close", () => {
      signal?.removeEventListener("abort", onAbort);
      const text = Buffer.concat(chunks).toString("utf8");
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new Error("the notebook kernel closed the connection without an answer"));
      }
    });
  });
}

export default function (pi) {
  if (!SOCKET || !SECRET) return; // not started by a pi-kernel kernel: nothing to offer

  // Calls go to the kernel one after the other, in the order Pi starts them: the kernel runs
  // one at a time anyway, and a Pi that runs a message's tools in parallel would otherwise
  // race their connections, so the second call's code could run (and print) before the first's.
  let previous = Promise.resolve();
  for (const tool of TOOLS) {
    pi.registerTool({
      ...tool,
      async execute(toolCallId, params, signal) {
        const request = { op: "call", tool: tool.name, callId: toolCallId, args: params ?? {} };
        const mine = previous.then(() => ask(request, signal));
        previous = mine.catch(() => undefined);
        const reply = await mine;
        if (!reply.ok) throw new Error(reply.error);
        if (reply.isError) throw new Error(reply.content.map((part) => part.text ?? "").join("\n"));
        return { content: reply.content, details: { kernel: true } };
      },
    });
  }

  // Tool names (or "*") whose calls wait for the user's approval in this run.
  let asking = new Set(["*"]);
  // Whether this run keeps to a budget, and what its model calls cost so far (as Pi counts).
  let budgeted = false;
  let spent = nothingSpent();

  // Which tools a run may use is the running cell's choice (its policy), and so is which
  // calls the user approves first.  The kernel sends that choice as a command before its
  // prompt (nothing that starts a run comes between) and waits until it is handled, so the
  // run takes it without asking (a round trip to the kernel less before the model is
  // called).  A run that no such command came before (one another extension started) asks
  // the kernel instead.
  let offer = null;
  pi.registerCommand(OFFER_COMMAND, {
    description: "Used by pi-kernel's notebook kernel: the tools and approvals of the next run",
    handler: async (args) => {
      offer = null; // without arguments: the kernel takes back an offer that no run took
      if (!args.trim()) return;
      const given = JSON.parse(args);
      offer = { tools: given.tools ?? [], ask: given.ask ?? [], budget: given.budget === true };
    },
  });

  pi.on("before_agent_start", async () => {
    let given = offer;
    offer = null; // for this run only
    if (given === null) {
      try {
        const reply = await ask({ op: "offer" });
        if (reply.ok) given = reply;
      } catch {
        // The kernel does not answer: offer nothing rather than tools that cannot run, and
        // let no call through that the user may have wanted to approve.
      }
    }
    asking = new Set(given?.ask ?? ["*"]);
    budgeted = given?.budget === true;
    spent = nothingSpent();
    const offered = (given?.tools ?? []).filter((name) => NAMES.has(name));
    const others = pi.getActiveTools().filter((name) => !NAMES.has(name));
    pi.setActiveTools([...others, ...offered]);
  });

  pi.on("message_end", (event) => {
    const usage = event.message?.role === "assistant" ? event.message.usage : undefined;
    if (!usage) return undefined;
    for (const key of ["input", "output", "cacheRead", "cacheWrite"]) spent[key] += usage[key] ?? 0;
    spent.cost.total += usage.cost?.total ?? 0;
    return undefined;
  });

  // Before a model call: over the budget, the run ends here.
  pi.on("context", async (_event, ctx) => {
    const stop = await budgetStop();
    if (stop) ctx.abort();
    return undefined;
  });

  // A gate fails closed: over the budget, or when the user cannot be asked, the call does
  // not run.
  pi.on("tool_call", async (event, ctx) => {
    const stop = await budgetStop();
    if (stop) {
      ctx.abort();
      return { block: true, reason: stop };
    }
    if (!asking.has("*") && !asking.has(event.toolName)) return undefined;
    let reply;
    try {
      const request = { op: "approve", tool: event.toolName, callId: event.toolCallId, args: event.input ?? {} };
      reply = await ask(request, ctx?.signal);
    } catch (error) {
      return { block: true, reason: `Not run: the user could not be asked (${error.message}).` };
    }
    if (!reply.ok) return { block: true, reason: `Not run: ${reply.error}.` };
    if (!reply.allowed) return { block: true, reason: reply.reason || "The user did not approve this call." };
    return undefined;
  });

  // The conversation follows the notebook's cells: between turns the kernel moves the
  // session's leaf (in place, in the same session file) back to where a re-run cell was first
  // asked, and labels each cell's prompt, so that a resumed session still says which cell
  // asked what.  Sent as a prompt ("/pi-kernel-branch goto <id>"); Pi answers it once the
  // handler is done, and a throw reaches the kernel as an extension_error.
  pi.registerCommand(BRANCH_COMMAND, {
    description: "Used by pi-kernel's notebook kernel: move the conversation to an entry, or label one",
    handler: async (args, ctx) => {
      const [verb, id, ...words] = args.trim().split(/\s+/);
      if (verb === "goto") {
        const moved = await ctx.navigateTree(id, { summarize: false });
        if (moved?.cancelled) throw new Error("another extension cancelled the move");
      } else if (verb === "label") {
        pi.setLabel(id, words.join(" "));
      } else {
        throw new Error(`/${BRANCH_COMMAND} takes goto or label, not ${verb}`);
      }
    },
  });

  async function budgetStop() {
    if (!budgeted) return null;
    try {
      const reply = await ask({ op: "budget", usage: spent });
      return reply.ok ? reply.stop ?? null : `Stopped: the budget could not be checked (${reply.error}).`;
    } catch (error) {
      return `Stopped: the budget could not be checked (${error.message}).`;
    }
  }
}

function nothingSpent() {
  return { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, cost: { total: 0 } };
}
