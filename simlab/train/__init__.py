"""Training recipes for the small profile (and, given a profile, for Moshi-7B): codec, LM
pretraining, LoRA concealment (stage 1), controller (stage 2), and their evaluation.
One idea per module: `config` (YAML recipes), `data` (speech), `losses`, `state`
(checkpoints, resume, progress), one module per recipe, `ship` (the shipped weights)."""
