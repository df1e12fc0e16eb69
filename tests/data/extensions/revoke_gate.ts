// A test extension: `/revoke-gate` forgets the key of the `gated` provider (its models.json
// entry reads it from $SCRIPTED_GATE_KEY), as if a credential expired while Pi runs.  Pi
// still lists the provider's model from its earlier discovery, but refuses to switch to it.
export default function (pi: any) {
  pi.registerCommand("revoke-gate", {
    description: "Forget the gated provider's key",
    handler: async (_args: string, ctx: any) => {
      delete process.env.SCRIPTED_GATE_KEY;
      ctx.ui.notify("gated key revoked", "info");
    },
  });
}
