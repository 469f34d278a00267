"""Network: the served ONNX graph read with `onnx`, run by the float64 kernels of ops and smooth."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from service.classifier.geometry import ops, smooth
from service.classifier.geometry.ops import Array, Context, Dual, Mode, Switch
from service.errors import GeometryUnavailable
from service.metadata import INPUT_NAME, OUTPUT_NAME

#: op_type -> kernel. Constant nodes are read at load time.
KERNELS: dict[str, ops.Kernel] = {
    "Conv": ops.conv,
    "Gemm": ops.gemm,
    "MatMul": ops.matmul,
    "Add": ops.add,
    "Sub": ops.sub,
    "Mul": ops.mul,
    "Div": ops.div,
    "Relu": ops.relu,
    "LeakyRelu": ops.leaky_relu,
    "MaxPool": ops.max_pool,
    "Flatten": ops.flatten,
    "Reshape": ops.reshape,
    "Identity": ops.identity,
    "Elu": smooth.elu,
    "Erf": smooth.erf,
    "Sigmoid": smooth.sigmoid,
    "Tanh": smooth.tanh,
}
#: Ops that keep a network piecewise linear (Mul and Div only with a constant operand).
PIECEWISE_LINEAR = frozenset(KERNELS) - {"Elu", "Erf", "Sigmoid", "Tanh"}
#: A Conv whose dense matrix has at most this many entries (16 MB in float64) runs as one
#: matrix product; larger ones (big images) run as im2col.
DENSE_CONV_ENTRIES = 2_000_000


@dataclass(frozen=True)
class Node:
    op: str
    name: str  # the layer it belongs to: "/act1/Relu" -> "act1"
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]


@dataclass(frozen=True)
class Trace:
    """One run: the logits (values and tangents) and every switching layer, input to output."""

    logits: Dual
    switches: list[Switch]


def _layer_name(node: Any, index: int) -> str:
    """The module a node belongs to ("/act1/Relu" -> "act1"), else its name or op and index."""
    parts = [p for p in node.name.split("/") if p]
    return parts[0] if len(parts) > 1 else node.name or f"{node.op_type}_{index}"


def _attribute_problem(node: Node) -> str | None:
    """Why our kernel cannot run this node as configured, or None."""
    a = node.attrs
    if node.op == "Conv" and (
        a.get("group", 1) != 1
        or any(d != 1 for d in a.get("dilations", [1]))
        or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
        or len(a.get("kernel_shape", [3, 3])) != 2
    ):
        return "Conv (grouped, dilated, auto-padded or not 2D)"
    if node.op == "MaxPool" and (
        list(a.get("strides", [])) != list(a["kernel_shape"])
        or any(a.get("pads", [0]))
        or any(d != 1 for d in a.get("dilations", [1]))
        or a.get("ceil_mode", 0)
        or len(node.outputs) > 1
    ):
        return "MaxPool (overlapping, padded, dilated or with indices)"
    if node.op == "Flatten" and a.get("axis", 1) != 1:
        return "Flatten (axis other than 1)"
    if node.op == "Gemm" and a.get("transA", 0):
        return "Gemm (transA)"
    if node.op not in KERNELS:
        return node.op
    return None


class Network:
    """The served graph in float64: logits and their tangents along any input directions."""

    def __init__(
        self, nodes: list[Node], constants: dict[str, Array], input_shape: tuple[int, ...]
    ) -> None:
        self.constants = constants
        self.input_shape = input_shape
        self.nodes = self._with_dense_convs(nodes)
        self.smooth_ops = sorted(
            {n.op for n in nodes if n.op not in PIECEWISE_LINEAR} | self._variable_products()
        )
        #: Every op is piecewise linear: the local map is a region's exact affine map.
        self.piecewise_linear = not self.smooth_ops

    @classmethod
    def from_bytes(cls, data: bytes, input_shape: tuple[int, ...]) -> Network:
        """Read the graph and initializers; GeometryUnavailable names the ops we cannot run."""
        # Imported here, in the warm-up thread: `import onnx` takes ~0.4 s, which the process
        # start (and /healthz) need not wait for.
        import onnx
        from onnx import numpy_helper

        try:
            proto = onnx.load_from_string(data)
        except Exception as exc:  # protobuf's DecodeError and onnx's own share no base
            raise GeometryUnavailable(f"onnx cannot read the model file ({exc})") from None
        constants = {t.name: _float(numpy_helper.to_array(t)) for t in proto.graph.initializer}
        nodes = []
        for index, node in enumerate(proto.graph.node):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if node.op_type == "Constant" and "value" in attrs:
                constants[node.output[0]] = _float(numpy_helper.to_array(attrs["value"]))
                continue
            name = _layer_name(node, index)
            nodes.append(Node(node.op_type, name, tuple(node.input), tuple(node.output), attrs))
        problems = sorted({p for n in nodes if (p := _attribute_problem(n)) is not None})
        if problems:
            raise GeometryUnavailable(
                f"the geometry endpoints cannot evaluate this model: unsupported ops "
                f"{', '.join(problems)} (supported: {', '.join(sorted(KERNELS))}); "
                "/predict is unaffected"
            )
        return cls(nodes, constants, input_shape)

    def run(
        self,
        x: Array,
        directions: Array | None = None,
        *,
        mode: Mode = "point",
        homogeneous: np.ndarray[Any, np.dtype[np.bool_]] | None = None,
    ) -> Trace:
        """Evaluate at ``x`` (N, C, H, W) with tangents along ``directions`` (N, K, C, H, W)."""
        ctx = Context(mode=mode, homogeneous=homogeneous)
        env: dict[str, Dual] = {name: Dual(value) for name, value in self.constants.items()}
        env[INPUT_NAME] = Dual(x, directions)
        if homogeneous is not None and directions is not None:  # biases only enter the graph
            assert not directions[:, homogeneous].any(), "homogeneous directions start at 0"
        for node in self.nodes:
            args = [env[name] for name in node.inputs if name]
            env[node.outputs[0]] = KERNELS[node.op](ctx, node.name, node.attrs, args)
        return Trace(env[OUTPUT_NAME], ctx.switches)

    def logits(self, x: Array, *, chunk: int = 512) -> Array:
        """Logits (N, classes) at ``x`` in chunks (no tangents)."""
        parts = [self.run(x[i : i + chunk]).logits.value for i in range(0, len(x), chunk)]
        return np.concatenate(parts)

    def _with_dense_convs(self, nodes: list[Node]) -> list[Node]:
        """The nodes, each Conv small enough carrying its dense matrix (shapes from a run)."""
        env: dict[str, Dual] = {name: Dual(value) for name, value in self.constants.items()}
        env[INPUT_NAME] = Dual(np.zeros((1, *self.input_shape)))
        ctx = Context()
        out = []
        for node in nodes:
            args = [env[name] for name in node.inputs if name]
            if node.op == "Conv":
                shape = args[0].value.shape[1:]
                outputs = args[1].value.shape[0] * int(np.prod(shape[1:]))
                if int(np.prod(shape)) * outputs <= DENSE_CONV_ENTRIES:
                    matrix, out_shape = ops.conv_matrix(args[1].value, node.attrs, shape)
                    attrs = {**node.attrs, "dense": matrix, "dense_shape": out_shape}
                    node = replace(node, attrs=attrs)
            out.append(node)
            env[node.outputs[0]] = KERNELS[node.op](ctx, node.name, node.attrs, args)
        return out

    def _variable_products(self) -> set[str]:
        """Mul/Div nodes whose operands both depend on the input: not piecewise linear."""
        variable = {INPUT_NAME}
        found = set()
        for node in self.nodes:
            computed = [name for name in node.inputs if name in variable]
            if computed:
                variable.update(node.outputs)
            if node.op in ("Mul", "Div") and len(computed) == 2:
                found.add(f"{node.op} of two computed tensors")
        return found


def _float(a: np.ndarray[Any, Any]) -> Array:
    return np.asarray(a, dtype=np.float64) if a.dtype.kind == "f" else a
