// A test extension: `/confirm-test` asks a yes/no question through Pi's extension UI and
// reports the answer as a notification.  It starts no agent run, so Pi emits no events for
// the prompt itself: the client must still notice that the prompt is finished.
export default function (pi: any) {
  pi.registerCommand("confirm-test", {
    description: "Ask a yes/no question and report the answer",
    handler: async (_args: string, ctx: any) => {
      const confirmed = await ctx.ui.confirm("Proceed?", "The test asks for a yes or no.");
      ctx.ui.notify(`confirmed=${confirmed}`, "info");
    },
  });
}
