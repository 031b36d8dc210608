"""Layer 2: the network, its configuration, the input-spec metadata and its schema, the size rule, checkpoints."""
