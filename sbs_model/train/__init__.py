"""Training of SbS networks: backprop through the converged h (Rotermund & Pawelzik 2019).

Modules: ``forward`` (numpy reference forward that keeps every layer's input), ``forward_nb``
(numba forward kernels), ``backward`` (numpy reference backward), ``backward_nb`` (numba
kernels), ``cuda`` (numba.cuda twins), ``losses``, ``optimizers``, ``schedulers``, ``rules``
(registries: choose by name), ``qat`` (quantization-aware fine-tuning), ``checkpoint`` and
``trainer`` (the training loop behind ``sbs train``).
"""
