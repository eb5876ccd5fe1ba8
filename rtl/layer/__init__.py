"""The streaming SbS layer engine: a whole layer from its input feature map to its output h codes.

One component per module:

* :mod:`rtl.layer.sampler_pipe` -- pipelined integer sampler (tree-ordered cumulative sums, one
  search step per memory, one draw per cycle);
* :mod:`rtl.layer.threefry` -- Threefry-2x32-20 with one 32-bit addition per stage;
* :mod:`rtl.layer.spikegen` -- free-running spike generator: request sequencer, the Threefry
  pipe, the sampler and a credit-controlled FIFO;
* :mod:`rtl.layer.reciprocal_pipe` -- the ``div`` reciprocal as a pipelined restoring divider;
* :mod:`rtl.layer.coefficient` -- ``K = G*Y`` truncated to ``coef_bits``, pipelined;
* :mod:`rtl.layer.update_lanes` -- L lanes of the integer h update with per-beat coefficients;
* :mod:`rtl.layer.dot_lanes` -- registered L-lane dot product and B-beat accumulator;
* :mod:`rtl.layer.window` -- the receptive-field address generator (unfold order);
* :mod:`rtl.layer.core` -- one engine core: P interleaved IPs, fused update + dot pass per beat;
* :mod:`rtl.layer.engine` -- :class:`LayerEngine`, the top level (input RAM, waves, E cores,
  output serialiser);
* :mod:`rtl.layer.reference` -- the layer's expected output from the project's quantized model;
* :mod:`rtl.layer.design` -- the engine of a layer of a :class:`sbs_model.quant.QuantizedModel`
  and its real inputs; :mod:`rtl.layer.generate` -- the design directory of ``sbs build --layer``.

The exact cycle count is :func:`sbs_model.layer_cycles.layer_cycles` (pure Python).
"""
