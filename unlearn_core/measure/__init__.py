"""How a run is judged: the classifier probe (`probe`), FID and Inception features (`fid`), the
metrics of a run (`metrics`), the embedding view (`embedding`) and the pictures and plots that
show them (`viz`, `plots`)."""
