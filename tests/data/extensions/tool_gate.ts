// A test extension: every bash call waits for a `select` dialog ("Allow" / "Block") in the
// middle of an agent run, so a client must answer while the turn is streaming.
export default function (pi: any) {
  pi.on("tool_call", async (event: any, ctx: any) => {
    if (event.toolName !== "bash") return undefined;
    const choice = await ctx.ui.select(`Run ${event.input.command}?`, ["Allow", "Block"]);
    if (choice !== "Allow") return { block: true, reason: `Blocked (answer: ${choice})` };
    return undefined;
  });
}
