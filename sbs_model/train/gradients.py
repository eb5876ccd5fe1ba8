"""Network-level backward: from dL/dh of the output layer to the weight gradient of every
trainable SbS layer (sums over IPs plus the IP counts)."""
from __future__ import annotations

import numpy as np

from sbs_model.network import NetworkSpec
from sbs_model.train.backward import RULE_BACKPROP
from sbs_model.train.forward import layer_weights, pool_backward


def network_backward(net: NetworkSpec, weights: dict, inputs, outputs, g_out, rules: dict, sbs_backward,
                     extra_g: dict | None = None):
    """``inputs``/``outputs`` from :func:`sbs_model.train.forward.network_forward` (computed with
    ``weights``), ``g_out`` (B, N_last) = dL/dh of the last layer, ``rules`` {layer: rule code},
    ``extra_g`` {layer: dL/dh (B, N, X, Y)} added where the error reaches that layer (regularisers).
    Returns ``{layer: (dW_sum (S, N), count)}`` for every layer in ``rules``."""
    extra_g = extra_g or {}
    trainable = sorted(rules)
    lowest = trainable[0] if trainable else len(net.layers)
    g = np.asarray(g_out, dtype=np.float64).reshape(outputs[-1].shape)
    grads = {}
    for i in range(len(net.layers) - 1, lowest - 1, -1):
        layer = net.layers[i]
        if i in extra_g:
            g = g + extra_g[i]
        need_dx = i > lowest
        if layer.is_sbs:
            rule = rules.get(i, RULE_BACKPROP)
            dW, count, dx = sbs_backward(inputs[i], outputs[i], layer_weights(net, weights, i), g, layer,
                                         rule, need_dx)
            if i in rules:
                grads[i] = (dW, count)
        else:
            dx = pool_backward(inputs[i], g, layer) if need_dx else None
        g = dx
    return grads
