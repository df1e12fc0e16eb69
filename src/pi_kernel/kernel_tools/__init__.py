"""Kernel tools: Pi runs Python in the notebook's kernel, reads its history and variables,
and proposes cells, through an extension of its own and a channel only this kernel's Pi can
use.  The engine's part is here (the catalog, the channel, the extension); what the tools do
in the kernel is the notebook face's (``pi_magics.workbench``)."""
