"""The ``ssmar`` command line: one sub-command module per area of the pipeline."""
