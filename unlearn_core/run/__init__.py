"""Running an unlearning job: the training loop (`engine`), a whole run from a spec to its
outputs and metrics (`pipeline`) and a run in a background thread with live events (`live`)."""
