"""Layer 9: the commands: parse the command line, call the layers below, print and pick the exit code."""
