"""The main command (``python -m pi_kernel start``) and what only it needs.

``start`` runs JupyterLab (or, headless, the tour notebook) with Pi; ``backend`` decides
whose models Pi offers; ``local_model`` and ``local_server`` are the offline demo model and
its server process.  Nothing here is imported by the engine, the kernel or the magics.
"""
