"""What the joint model's network looks at: galaxy images decoded into a packed store (:mod:`.images`), feature
tables (:mod:`.features`), the inputs of a fit (:mod:`.inputs`), the Flax NNX networks (:mod:`.networks`) and their
checkpoints (:mod:`.checkpoint`). Imported only by the joint model, so a votes-only fit never loads Flax."""
