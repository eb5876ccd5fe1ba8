"""The whole SbS network in RTL: image in, class out (one component per module).

* :mod:`rtl.network.top` -- :class:`NetworkAccelerator`: layer engines and pooling units chained
  through feature-map RAMs, the centre crop, the scheduler, the class (argmax) and the debug read
  path;
* :mod:`rtl.network.pool` -- :class:`PoolUnit`: average / max pooling of h codes;
* :mod:`rtl.network.fmap` -- :class:`FeatureMap`: a layer's output codes in registered block-RAM banks;
* :mod:`rtl.network.feeder` -- :class:`FmapFeeder`: a feature map read out as a stream;
* :mod:`rtl.network.design` -- the design for a quantized model and a plan, and the model's answer;
* :mod:`rtl.network.build` -- ``sbs build`` without ``--layer``: Verilog + manifest.json.

Plans: :mod:`sbs_model.plan`; exact cycles: :mod:`sbs_model.network_cycles`.
"""
