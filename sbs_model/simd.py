"""LLVM vector building blocks for the explicit-SIMD numba kernels (:mod:`sbs_model.kernels_cpu`,
:mod:`sbs_model.quant_fast_f32`).

numba leaves LLVM's SLP vectoriser off, so the hot loops are written as LLVM vector instructions
(llvmlite IR inside ``numba.extending.intrinsic`` code generators).  These helpers are the parts
every such intrinsic needs: the address of an array row, a vector pointer / load at an element
offset, a scalar broadcast, and the pairwise-halves reduction of a vector.  They emit plain IR
(no fast-math flags), so the kernels keep their exact, documented operation order.
"""
from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types

I32 = ir.IntType(32)


def row_ptr(context, builder, aryty, ary_v, row):
    """Pointer to ``ary[row, 0]`` of a 2-D array (no wraparound)."""
    ary = context.make_array(aryty)(context, builder, ary_v)
    shape = cgutils.unpack_tuple(builder, ary.shape)
    strides = cgutils.unpack_tuple(builder, ary.strides)
    zero = context.get_constant(types.intp, 0)
    return cgutils.get_item_pointer2(context, builder, ary.data, shape, strides, aryty.layout,
                                     [row, zero], wraparound=False)


def vector_ptr(builder, base, offset, vty):
    """``base + offset`` elements as a pointer to the vector type ``vty``."""
    return builder.bitcast(builder.gep(base, [offset]), vty.as_pointer())


def load_vector(builder, base, offset, vty, align):
    """The ``vty`` vector at ``base + offset`` elements (``align``: the element size in bytes)."""
    return builder.load(vector_ptr(builder, base, offset, vty), align=align, typ=vty)


def splat(builder, x, vty):
    """The scalar ``x`` in every lane of a ``vty`` vector."""
    v = builder.insert_element(ir.Constant(vty, ir.Undefined), x, ir.Constant(I32, 0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(I32, vty.count), [0] * vty.count))


def reduce_halves(builder, a, lanes: int, add):
    """Sum of the ``lanes`` lanes of ``a`` by halves: lanes ``i`` and ``i + n/2`` are added, then the
    same on the first half, down to one lane (``add``: ``builder.fadd`` or ``builder.add``).  For 8
    lanes the order is ``((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7))``."""
    n = lanes
    while n > 1:
        n //= 2
        lo = builder.shuffle_vector(a, a, ir.Constant(ir.VectorType(I32, n), list(range(n))))
        hi = builder.shuffle_vector(a, a, ir.Constant(ir.VectorType(I32, n), list(range(n, 2 * n))))
        a = add(lo, hi)
    return builder.extract_element(a, ir.Constant(I32, 0))
