"""Counting any network: per-layer facts (output shapes, parameters, work under named conventions, receptive fields),
the conventions that turn work into a number, and the reference layers and diagnoses built on them.

- :mod:`verify.count.trace`: one run of a model, every torch operator recorded with tensor identities and the module
  that ran it (meta tensors; real CPU tensors where meta fails).
- :mod:`verify.count.ops`: the work of every operator (convolution, matrix products, attention, recurrent layers,
  normalization, pooling, interpolation, element-wise).
- :mod:`verify.count.conventions`: units of work (MACs, FLOPs, exact operations) and the per-module formulas (the
  second route the tests compare the operator count with).
- :mod:`verify.count.analyze`: the facts of any ``nn.Module``: per-layer shapes, parameters and counts.
- :mod:`verify.count.render`: those facts as a table or JSON.
- :mod:`verify.count.receptive`: receptive fields by index propagation through the traced operators
  (:mod:`verify.count.index_maps`: each operator's index map along one axis).
- :mod:`verify.count.support`: receptive fields measured by the gradient support of real units (the second route).
- :mod:`verify.count.instrumented`: reference layers that count their own operations.
- :mod:`verify.count.diagnose`: re-counting a network under every convention and common slip.
- :mod:`verify.count.models`: networks known by name (the bank registers its own) and loading a user's factory.
- :mod:`verify.count.parts`: ready-made bank parts for counting questions.

Nothing here imports the bank (``problems/``).
"""
