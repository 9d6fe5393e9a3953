"""The quality-budget searches that decide what ships: for a network, other calibrators' ranges, per-tensor ranges and
the activations kept in float (searched on the exported graph itself); for a language model, which weight matrices
stay wider than 4 bits under the perplexity budget."""
