// A test extension: every bash result is replaced by 20 MB of text, so Pi's stdout carries
// lines of that size (Pi's own bash tool would cut its output at 50 KB).
export default function (pi: any) {
  pi.on("tool_result", async (event: any) => {
    if (event.toolName !== "bash") return undefined;
    return { content: [{ type: "text", text: "x".repeat(20_000_000) + "\nend-of-flood\n" }] };
  });
}
