"""The command-line layer: one module per console script, each thin over the library.

``relight-train`` and ``relight-eval`` are Hydra apps over ``conf/``; the others parse
their arguments with argparse. The work is done in the library modules they call.
"""
