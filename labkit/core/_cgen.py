"""C source for the compiled integration kernels, printed from a traced right-hand side.

One translation unit per (system, dtype): the field for one trajectory ``lk_field`` (the
per-trajectory dopri5 driver) and for a block of ``W`` trajectories ``lk_field_lanes``, its
exact tangent map ``lk_field_jvp_lanes`` (forward-mode differentiation of the tape, so
Lyapunov spectra need no hand-written Jacobian), and the drivers, which loop over blocks of
trajectories outside and steps inside, so that a block's state stays in cache for a whole
segment.

The drivers repeat the eager integrators' arithmetic in the same order (the RK4 stages of
:func:`labkit.core.integrate.rk4_step`, the segment times of :func:`labkit.core.rk4`, the
time accumulation of :func:`labkit.dynamics.lyapunov_spectrum`), and the build uses
``-ffp-contract=off`` (no fused multiply-adds), so compiled and eager results agree to the
rounding of the C library's transcendental functions.
"""

from __future__ import annotations

import math

from labkit.core._tape import CONDITIONS, Node, Traced

__all__ = ["LANES", "kernel_source"]

#: Trajectories advanced together by one block of the fixed-step and Lyapunov drivers:
#: two AVX-512 vectors (the compiler picks narrower ones on other machines).
LANES = {"double": 16, "float": 32}

_UNARY_C = {
    "abs": "fabs", "sin": "sin", "cos": "cos", "tan": "tan", "exp": "exp", "log": "log",
    "sqrt": "sqrt", "tanh": "tanh", "sinh": "sinh", "cosh": "cosh", "arctan": "atan",
    "arcsin": "asin", "arccos": "acos", "arcsinh": "asinh", "arctanh": "atanh",
    "floor": "floor", "ceil": "ceil", "log1p": "log1p", "expm1": "expm1", "log10": "log10",
    "log2": "log2", "cbrt": "cbrt", "sign": "lk_sign",
}
_BINARY_C = {"add": "+", "sub": "-", "mul": "*", "div": "/", "lt": "<", "le": "<=",
             "gt": ">", "ge": ">=", "eq": "==", "ne": "!=", "and": "&&", "or": "||"}
_CALL2_C = {"mod": "lk_mod", "fmod": "fmod", "arctan2": "atan2", "maximum": "lk_max",
            "minimum": "lk_min"}
#: Nodes whose derivative is zero everywhere they are defined.
_FLAT = frozenset({"floor", "ceil", "sign", "const", "t", "p"}) | CONDITIONS


def _literal(value: float) -> str:
    if math.isnan(value):
        return "((real)NAN)"
    if math.isinf(value):
        return "((real)INFINITY)" if value > 0 else "(-(real)INFINITY)"
    return f"((real){value!r})"


class _Printer:
    """Prints a tape as C. ``lanes``: inputs are blocks ``[component][W]`` indexed by the
    lane ``w``; ``arrays``: node values are arrays ``[W]`` (shared by several lane loops)
    rather than locals of one loop."""

    def __init__(self, traced: Traced, lanes: bool = False, arrays: bool = False) -> None:
        self.t = traced
        self.nodes = traced.tape.nodes
        self.live = traced.reachable()
        self.lane = " * W + w" if lanes else ""
        self.cell = "[w]" if arrays else ""

    def name(self, i: int) -> str:
        node = self.nodes[i]
        if node.op == "const":
            return _literal(node.value)
        if node.op == "y":
            return f"y[{node.index}{self.lane}]"
        if node.op == "t":
            return "t"
        if node.op == "p":
            return f"p[{node.index}{self.lane}]"
        return f"v{i}{self.cell}"

    def const_value(self, i: int) -> float | None:
        node = self.nodes[i]
        return node.value if node.op == "const" else None

    def expr(self, node: Node) -> str:
        a = [self.name(j) for j in node.args]
        op = node.op
        if op in _BINARY_C:
            return f"{a[0]} {_BINARY_C[op]} {a[1]}"
        if op == "pow":
            return self.power(node)
        if op == "neg":
            return f"-{a[0]}"
        if op == "not":
            return f"!{a[0]}"
        if op in _UNARY_C:
            return f"{_UNARY_C[op]}({a[0]})"
        if op in _CALL2_C:
            return f"{_CALL2_C[op]}({a[0]}, {a[1]})"
        if op == "select":
            return f"{a[0]} ? {a[1]} : {a[2]}"
        raise NotImplementedError(f"no C for the operation {op!r}")  # pragma: no cover

    def power(self, node: Node) -> str:
        # torch's CPU pow with a scalar exponent special-cases these (exact products, sqrt)
        base, exponent = self.name(node.args[0]), self.const_value(node.args[1])
        special = {2.0: f"{base} * {base}", 3.0: f"{base} * {base} * {base}",
                   0.5: f"sqrt({base})", -0.5: f"(real)1 / sqrt({base})",
                   -1.0: f"(real)1 / {base}", -2.0: f"(real)1 / ({base} * {base})",
                   1.0: f"{base}"}
        if exponent in special:
            return special[exponent]
        return f"pow({base}, {self.name(node.args[1])})"

    def primal(self) -> list[str]:
        lines = []
        for i in self.live:
            node = self.nodes[i]
            if node.op in ("const", "y", "t", "p"):
                continue
            ctype = "int" if node.op in CONDITIONS else "real"
            if self.cell:
                lines.append(f"v{i}[w] = {self.expr(node)};")
            else:
                lines.append(f"const {ctype} v{i} = {self.expr(node)};")
        return lines

    def declarations(self) -> list[str]:
        """Array declarations of the node values (``arrays`` mode)."""
        out = []
        for i in self.live:
            node = self.nodes[i]
            if node.op not in ("const", "y", "t", "p"):
                out.append(f"{'int' if node.op in CONDITIONS else 'real'} v{i}[W];")
        return out

    def aux(self, name: str, expr: str, aux: list[str]) -> str:
        """Record a value computed once per state; returns its name."""
        if self.cell:
            aux.append(f"{name}[w] = {expr};")
            self.aux_names.append(name)
        else:
            aux.append(f"const real {name} = {expr};")
        return f"{name}{self.cell}"

    def tangent(self) -> tuple[list[str], list[str], dict[int, str]]:
        """(lines computed once per state, lines per tangent vector, tangent names)."""
        aux: list[str] = []
        self.aux_names: list[str] = []
        lines: list[str] = []
        d: dict[int, str] = {}
        for i in self.live:
            node = self.nodes[i]
            if node.op == "y":
                d[i] = f"v[{node.index}{self.lane}]"
                continue
            if node.op in _FLAT or node.op == "neg" and node.args[0] not in d:
                continue
            args = node.args
            da = [d.get(j) for j in args]
            if all(x is None for x in da[:2]) and node.op != "select":
                continue
            if node.op == "select" and da[1] is None and da[2] is None:
                continue
            expr = self.derivative(i, node, da, aux)
            if expr is None:
                continue
            lines.append(f"const real d{i} = {expr};")
            d[i] = f"d{i}"
        return aux, lines, d

    def derivative(self, i: int, node: Node, da: list[str | None], aux: list[str]) -> str | None:
        op = node.op
        a = [self.name(j) for j in node.args]
        v = self.name(i)
        z = "(real)0"
        d0 = da[0] or z
        d1 = da[1] if len(da) > 1 and da[1] is not None else z
        if op == "add":
            return " + ".join(x for x in da if x) if all(da) else (da[0] or da[1])
        if op == "sub":
            if da[0] and da[1]:
                return f"{da[0]} - {da[1]}"
            return da[0] or f"-{da[1]}"
        if op == "mul":
            terms = []
            if da[0]:
                terms.append(f"{da[0]} * {a[1]}")
            if da[1]:
                terms.append(f"{a[0]} * {da[1]}")
            return " + ".join(terms)
        if op == "div":
            if da[1] is None:
                return f"{da[0]} / {a[1]}"
            return f"({d0} - {v} * {da[1]}) / {a[1]}"
        if op == "neg":
            return f"-{d0}"
        if op == "pow":
            c = self.const_value(node.args[1])
            if c is not None:
                if c == 2.0:
                    return f"(real)2 * {a[0]} * {d0}"
                g = self.aux(f"g{i}", f"(real){c!r} * pow({a[0]}, (real){c - 1!r})", aux)
                return f"{g} * {d0}"
            g = self.aux(f"g{i}", f"{v} * log({a[0]})", aux)
            h = self.aux(f"h{i}", f"{v} * {a[1]} / {a[0]}", aux)
            terms = []
            if da[0]:
                terms.append(f"{h} * {da[0]}")
            if da[1]:
                terms.append(f"{g} * {da[1]}")
            return " + ".join(terms)
        simple = {
            "sin": f"cos({a[0]})", "cos": f"-sin({a[0]})", "tan": f"((real)1 + {v} * {v})",
            "exp": v, "log": f"((real)1 / {a[0]})", "sqrt": f"((real)0.5 / {v})",
            "tanh": f"((real)1 - {v} * {v})", "sinh": f"cosh({a[0]})",
            "cosh": f"sinh({a[0]})", "arctan": f"((real)1 / ((real)1 + {a[0]} * {a[0]}))",
            "arcsin": f"((real)1 / sqrt((real)1 - {a[0]} * {a[0]}))",
            "arccos": f"(-(real)1 / sqrt((real)1 - {a[0]} * {a[0]}))",
            "arcsinh": f"((real)1 / sqrt({a[0]} * {a[0]} + (real)1))",
            "arctanh": f"((real)1 / ((real)1 - {a[0]} * {a[0]}))",
            "log1p": f"((real)1 / ((real)1 + {a[0]}))", "expm1": f"({v} + (real)1)",
            "log10": f"((real)1 / ({a[0]} * (real)2.302585092994046))",
            "log2": f"((real)1 / ({a[0]} * (real)0.6931471805599453))",
            "cbrt": f"((real)1 / ((real)3 * {v} * {v}))",
            "abs": f"lk_sign({a[0]})",
        }
        if op in simple:
            return f"{self.aux(f'g{i}', simple[op], aux)} * {d0}"
        if op == "mod":
            return f"{d0} - floor({a[0]} / {a[1]}) * {d1}" if da[1] else d0
        if op == "fmod":
            return f"{d0} - trunc({a[0]} / {a[1]}) * {d1}" if da[1] else d0
        if op == "arctan2":
            g = self.aux(f"g{i}", f"(real)1 / ({a[0]} * {a[0]} + {a[1]} * {a[1]})", aux)
            return f"({a[1]} * {d0} - {a[0]} * {d1}) * {g}"
        if op in ("maximum", "minimum"):
            cmp = ">" if op == "maximum" else "<"
            return f"({a[0]} {cmp} {a[1]}) ? {d0} : {d1}"
        if op == "select":
            return f"{a[0]} ? {da[1] or z} : {da[2] or z}"
        raise NotImplementedError(f"no derivative for the operation {op!r}")  # pragma: no cover


_PRELUDE = """\
#include <math.h>
#include <stdint.h>
#include <string.h>
typedef {real} real;
#define D {dim}
#define PSLOTS {nparams}
#define W {lanes}
static inline real lk_sign(real x) {{ return x != x ? x : (real)((x > 0) - (x < 0)); }}
static inline real lk_max(real a, real b) {{ return (a != a || b != b) ? (real)NAN : (a > b ? a : b); }}
static inline real lk_min(real a, real b) {{ return (a != a || b != b) ? (real)NAN : (a < b ? a : b); }}
static inline real lk_mod(real a, real b) {{
    real r = fmod(a, b);
    if (r != 0 && ((b < 0) != (r < 0))) r += b;
    return r;
}}
"""

_DRIVERS = """
static inline int lk_bad(const real* y, real bound) {
    for (int i = 0; i < D; i++) {
        if (!isfinite(y[i]) || fabs(y[i]) > bound) return 1;
    }
    return 0;
}

/* One classical RK4 step of W lanes in place, in the order of
   labkit.core.integrate.rk4_step. */
static inline void lk_rk4_lanes(real t, double dt, real* restrict y, const real* restrict p) {
    real k1[D * W], k2[D * W], k3[D * W], k4[D * W], s[D * W];
    const real h = (real)dt, h2 = (real)(dt / 2), h6 = (real)(dt / 6);
    lk_field_lanes(t, y, p, k1);
    for (int i = 0; i < D * W; i++) s[i] = y[i] + h2 * k1[i];
    lk_field_lanes(t + h2, s, p, k2);
    for (int i = 0; i < D * W; i++) s[i] = y[i] + h2 * k2[i];
    lk_field_lanes(t + h2, s, p, k3);
    for (int i = 0; i < D * W; i++) s[i] = y[i] + h * k3[i];
    lk_field_lanes(t + h, s, p, k4);
    for (int i = 0; i < D * W; i++) y[i] = y[i] + h6 * (k1[i] + (real)2 * k2[i] + (real)2 * k3[i] + k4[i]);
}

static inline void lk_euler_lanes(real t, double dt, real* restrict y, const real* restrict p) {
    real k[D * W];
    lk_field_lanes(t, y, p, k);
    for (int i = 0; i < D * W; i++) y[i] = y[i] + (real)dt * k[i];
}

static inline void lk_map_lanes(real* restrict y, const real* restrict p) {
    real k[D * W];
    lk_field_lanes((real)0, y, p, k);
    for (int i = 0; i < D * W; i++) y[i] = k[i];
}

static inline int lk_bad_lane(const real* y, int w, real bound) {
    for (int i = 0; i < D; i++) {
        const real a = y[i * W + w];
        if (!isfinite(a) || fabs(a) > bound) return 1;
    }
    return 0;
}

/* Lanes: W trajectories advance together, each variable a block [D][W], so that the
   compiler vectorizes across trajectories; a short last block repeats its last
   trajectory in the spare lanes and stores only the real ones. */
static inline void lk_load_lanes(int64_t b, int n, const real* y0, const real* p,
                                 int64_t pstride, real* y, real* pl) {
    for (int w = 0; w < W; w++) {
        const int64_t src = b + (w < n ? w : n - 1);
        for (int i = 0; i < D; i++) y[i * W + w] = y0[src * D + i];
        for (int j = 0; j < PSLOTS; j++) pl[j * W + w] = p[src * pstride + j];
    }
}

static inline void lk_store_lanes(int64_t b, int n, int64_t j, int64_t nsave, const real* y,
                                  real* out, float* out32) {
    for (int w = 0; w < n; w++) {
        const int64_t row = ((b + w) * nsave + j) * D;
        if (out) for (int i = 0; i < D; i++) out[row + i] = y[i * W + w];
        if (out32) for (int i = 0; i < D; i++) out32[row + i] = (float)y[i * W + w];
    }
}

/* The bounds of a block's lanes, bl [W], from bound [B] (one per trajectory), spare lanes
   repeating the last trajectory's as lk_load_lanes does. */
static inline void lk_load_bounds(int64_t b, int n, const real* bound, real* bl) {
    for (int w = 0; w < W; w++) bl[w] = bound[b + (w < n ? w : n - 1)];
}

/* Trajectories b0..b1-1 from y0 [B, D]; method 0 RK4, 1 Euler, 2 a map. save_at holds
   nsave step counts (the first 0). bound [B] is each trajectory's divergence bound,
   compared in real as the eager loop compares (labkit.core.integrate.default_bound).
   Flows check divergence at the end of each segment and flag it with the segment's end
   time, as the eager loop does; maps check every iteration and flag the iteration. A
   diverged trajectory goes on as NaN. */
void lk_integrate(int64_t b0, int64_t b1, int method, const real* y0, const real* p,
                  int64_t pstride, double t0, double dt, int64_t nsave,
                  const int64_t* save_at, const real* bound, real* out, float* out32,
                  real* yend, uint8_t* diverged, real* diverged_at) {
    for (int64_t b = b0; b < b1; b += W) {
        const int n = (b1 - b) < W ? (int)(b1 - b) : W;
        real y[D * W], pl[PSLOTS * W], bl[W];
        int dead[W];
        lk_load_lanes(b, n, y0, p, pstride, y, pl);
        lk_load_bounds(b, n, bound, bl);
        for (int w = 0; w < W; w++) dead[w] = 0;
        lk_store_lanes(b, n, 0, nsave, y, out, out32);
        for (int64_t j = 1; j < nsave; j++) {
            const int64_t k = save_at[j] - save_at[j - 1];
            if (method == 2) {
                for (int64_t i = 0; i < k; i++) {
                    lk_map_lanes(y, pl);
                    for (int w = 0; w < W; w++) {
                        if (!dead[w] && lk_bad_lane(y, w, bl[w])) {
                            dead[w] = 1;
                            if (w < n) diverged_at[b + w] = (real)(save_at[j - 1] + i + 1);
                        }
                        if (dead[w]) for (int c = 0; c < D; c++) y[c * W + w] = (real)NAN;
                    }
                }
            } else {
                const real ts = (real)(t0 + (double)save_at[j - 1] * dt);
                for (int64_t i = 0; i < k; i++) {
                    const real ti = ts + (real)((double)i * dt);
                    if (method == 0) lk_rk4_lanes(ti, dt, y, pl);
                    else lk_euler_lanes(ti, dt, y, pl);
                }
                for (int w = 0; w < W; w++) {
                    if (!dead[w] && lk_bad_lane(y, w, bl[w])) {
                        dead[w] = 1;
                        if (w < n) diverged_at[b + w] = ts + (real)((double)k * dt);
                    }
                    if (dead[w]) for (int c = 0; c < D; c++) y[c * W + w] = (real)NAN;
                }
            }
            lk_store_lanes(b, n, j, nsave, y, out, out32);
        }
        for (int w = 0; w < n; w++) {
            diverged[b + w] = (uint8_t)dead[w];
            for (int i = 0; i < D; i++) yend[(b + w) * D + i] = y[i * W + w];
        }
    }
}

/* The derivative of one RK4 step applied to the m tangent vectors V [m][D][W], and the
   step itself (the forward-mode derivative of lk_rk4_lanes). */
static inline void lk_rk4_tangent_lanes(real t, double dt, real* restrict y,
                                        real* restrict V, int m, const real* restrict p) {
    real k1[D * W], k2[D * W], k3[D * W], k4[D * W], s[D * W];
    real K1[D * D * W], K2[D * D * W], K3[D * D * W], K4[D * D * W], S[D * D * W];
    const real h = (real)dt, h2 = (real)(dt / 2), h6 = (real)(dt / 6);
    const int n = m * D * W;
    lk_field_jvp_lanes(t, y, p, V, m, k1, K1);
    for (int i = 0; i < D * W; i++) s[i] = y[i] + h2 * k1[i];
    for (int i = 0; i < n; i++) S[i] = V[i] + h2 * K1[i];
    lk_field_jvp_lanes(t + h2, s, p, S, m, k2, K2);
    for (int i = 0; i < D * W; i++) s[i] = y[i] + h2 * k2[i];
    for (int i = 0; i < n; i++) S[i] = V[i] + h2 * K2[i];
    lk_field_jvp_lanes(t + h2, s, p, S, m, k3, K3);
    for (int i = 0; i < D * W; i++) s[i] = y[i] + h * k3[i];
    for (int i = 0; i < n; i++) S[i] = V[i] + h * K3[i];
    lk_field_jvp_lanes(t + h, s, p, S, m, k4, K4);
    for (int i = 0; i < D * W; i++) y[i] = y[i] + h6 * (k1[i] + (real)2 * k2[i] + (real)2 * k3[i] + k4[i]);
    for (int i = 0; i < n; i++) V[i] = V[i] + h6 * (K1[i] + (real)2 * K2[i] + (real)2 * K3[i] + K4[i]);
}

/* One iteration of a map and its Jacobian applied to the tangent vectors V [m][D][W]. */
static inline void lk_map_tangent_lanes(real* restrict y, real* restrict V, int m,
                                        const real* restrict p) {
    real fy[D * W], JV[D * D * W];
    lk_field_jvp_lanes((real)0, y, p, V, m, fy, JV);
    for (int i = 0; i < D * W; i++) y[i] = fy[i];
    for (int i = 0; i < m * D * W; i++) V[i] = JV[i];
}

/* Gram-Schmidt with one re-orthogonalization on the m vectors of V [m][D][W], lane by
   lane: they become orthonormal and log |R_ii| is added to acc [m][W]. A lane whose
   vector vanished or went non-finite is marked in bad. */
static inline void lk_reorthonormalize_lanes(real* restrict V, int m, real* restrict acc,
                                             int* restrict bad) {
    for (int i = 0; i < m; i++) {
        real* vi = V + i * D * W;
        for (int pass = 0; pass < 2; pass++) {
            for (int j = 0; j < i; j++) {
                const real* vj = V + j * D * W;
                real r[W];
                for (int w = 0; w < W; w++) r[w] = 0;
                for (int k = 0; k < D; k++)
                    for (int w = 0; w < W; w++) r[w] += vj[k * W + w] * vi[k * W + w];
                for (int k = 0; k < D; k++)
                    for (int w = 0; w < W; w++) vi[k * W + w] -= r[w] * vj[k * W + w];
            }
        }
        real norm[W];
        for (int w = 0; w < W; w++) norm[w] = 0;
        for (int k = 0; k < D; k++)
            for (int w = 0; w < W; w++) norm[w] += vi[k * W + w] * vi[k * W + w];
        for (int w = 0; w < W; w++) {
            norm[w] = sqrt(norm[w]);
            if (!(norm[w] > 0) || !isfinite(norm[w])) { bad[w] = 1; norm[w] = 1; }
            acc[i * W + w] += log(norm[w]);
        }
        for (int k = 0; k < D; k++)
            for (int w = 0; w < W; w++) vi[k * W + w] /= norm[w];
    }
}

/* Benettin's algorithm for trajectories b0..b1-1, as labkit.dynamics.lyapunov_spectrum
   with tangent="jvp": n_transient RK4 steps of the state (method 0; method 2: iterations
   of a map), then n_steps steps of the state and m tangent vectors (started as the
   first m unit vectors), re-orthonormalized every qr_every steps and at the end. exps
   [B, m] gets the sums of log |R_ii| (the caller divides by the time). The time starts
   at t0 and accumulates as t += dt, as in the eager loop. */
void lk_lyapunov(int64_t b0, int64_t b1, int method, const real* y0, const real* p,
                 int64_t pstride, double t0, double dt, int64_t n_transient, int64_t n_steps, int64_t m,
                 int64_t qr_every, const real* bound, real* exps, real* yend,
                 uint8_t* diverged, real* diverged_at) {
    for (int64_t b = b0; b < b1; b += W) {
        const int n = (b1 - b) < W ? (int)(b1 - b) : W;
        real y[D * W], pl[PSLOTS * W], V[D * D * W], acc[D * W], when[W], bl[W];
        int dead[W], bad[W];
        lk_load_lanes(b, n, y0, p, pstride, y, pl);
        lk_load_bounds(b, n, bound, bl);
        real t = (real)t0;
        for (int64_t i = 0; i < n_transient; i++) {
            if (method == 2) lk_map_lanes(y, pl);
            else lk_rk4_lanes(t, dt, y, pl);
            t = t + (real)dt;
        }
        int alive = 0;
        for (int w = 0; w < W; w++) {
            dead[w] = lk_bad_lane(y, w, bl[w]);
            bad[w] = 0;
            when[w] = t;
            alive += !dead[w];
        }
        for (int i = 0; i < D * D * W; i++) V[i] = 0;
        for (int i = 0; i < D * W; i++) acc[i] = 0;
        for (int i = 0; i < m; i++)
            for (int w = 0; w < W; w++) V[(i * D + i) * W + w] = 1;
        for (int64_t i = 1; i <= n_steps && alive; i++) {
            if (method == 2) lk_map_tangent_lanes(y, V, (int)m, pl);
            else lk_rk4_tangent_lanes(t, dt, y, V, (int)m, pl);
            t = t + (real)dt;
            if (i % qr_every == 0 || i == n_steps) {
                lk_reorthonormalize_lanes(V, (int)m, acc, bad);
                alive = 0;
                for (int w = 0; w < W; w++) {
                    if (!dead[w] && (bad[w] || lk_bad_lane(y, w, bl[w]))) {
                        dead[w] = 1;
                        when[w] = t;
                    }
                    alive += !dead[w];
                }
            }
        }
        for (int w = 0; w < n; w++) {
            diverged[b + w] = (uint8_t)dead[w];
            if (dead[w]) diverged_at[b + w] = when[w];
            for (int i = 0; i < m; i++) exps[(b + w) * m + i] = dead[w] ? (real)NAN : acc[i * W + w];
            for (int i = 0; i < D; i++) yend[(b + w) * D + i] = y[i * W + w];
        }
    }
}
"""

_DOPRI5 = """
/* Dormand-Prince 5(4) for trajectories b0..b1-1, each with its own step, as
   labkit.core.dopri5.dopri5 does it (same stages, controller, dense output and flags).
   out [B, n_out, D] arrives filled with NaN; row 0 is the initial state. status [B]
   arrives 0 (reached the end) and becomes 1 where a trajectory diverged (beyond its
   bound [B], non-finite, or its step collapsed) or 2 where it used max_steps attempts
   before the end; stopped_at gets the time it had reached then. */
void lk_dopri5(int64_t b0, int64_t b1, const real* y0, const real* p, int64_t pstride,
               const real* t_out, int64_t n_out, double rtol, double atol, double h0,
               int64_t max_steps, const real* bound, real* out, uint8_t* status,
               real* stopped_at, int64_t* n_steps) {
    const real tiny = %(tiny)s;
    const real t_end = t_out[n_out - 1];
    for (int64_t b = b0; b < b1; b++) {
        real y[D], ks[7][D], yi[D], err[D], acc[D], r5[D];
        const real* pb = p + b * pstride;
        const real bnd = bound[b];
        memcpy(y, y0 + b * D, sizeof(y));
        for (int i = 0; i < D; i++) out[(b * n_out) * D + i] = y[i];
        real t = t_out[0], h;
        int64_t next = 1, accepted = 0, attempts = 0;
        lk_field(t, y, pb, ks[0]);
        if (h0 > 0) {
            h = (real)h0;
        } else {
            real d0 = 0, d1 = 0;
            for (int i = 0; i < D; i++) {
                const real sc = (real)atol + (real)rtol * fabs(y[i]);
                d0 += (y[i] / sc) * (y[i] / sc);
                d1 += (ks[0][i] / sc) * (ks[0][i] / sc);
            }
            d0 = sqrt(d0 / D);
            d1 = sqrt(d1 / D);
            h = (d0 < (real)1e-5 || d1 < (real)1e-5) ? (real)1e-6
                : (real)0.01 * d0 / (d1 > (real)1e-300 ? d1 : (real)1e-300);
        }
        if (h > t_end - t_out[0]) h = t_end - t_out[0];
        while (1) {
            attempts++;
            const real hs = h < t_end - t ? h : t_end - t;
            for (int s = 1; s < 7; s++) {
                for (int i = 0; i < D; i++) {
                    real a = 0;
                    for (int j = 0; j < s; j++) {
                        if (LK_A[s][j] != 0) a = (j == 0) ? LK_A[s][j] * ks[j][i] : a + LK_A[s][j] * ks[j][i];
                    }
                    yi[i] = y[i] + hs * a;
                }
                lk_field(t + LK_C[s] * hs, yi, pb, ks[s]);
            }
            real norm = 0;
            int finite = 1;
            for (int i = 0; i < D; i++) {
                real e = 0;
                int first = 1;
                for (int j = 0; j < 7; j++) {
                    if (LK_E[j] != 0) { e = first ? LK_E[j] * ks[j][i] : e + LK_E[j] * ks[j][i]; first = 0; }
                }
                err[i] = hs * e;
                const real ay = fabs(y[i]), an = fabs(yi[i]);
                const real tol = (real)atol + (real)rtol * (ay > an ? ay : an);
                norm += (err[i] / tol) * (err[i] / tol);
                if (!isfinite(yi[i])) finite = 0;
            }
            norm = sqrt(norm / D);
            if (!isfinite(norm)) finite = 0;
            const int ok = finite && norm <= 1;
            int blown = 0;
            if (ok) {
                const real t_new = t + hs;
                int have_r5 = 0;
                while (next < n_out && t_out[next] <= t_new * (real)(1 + 1e-15)) {
                    if (!have_r5) {
                        for (int i = 0; i < D; i++) {
                            real a = 0;
                            int first = 1;
                            for (int j = 0; j < 7; j++) {
                                if (LK_DD[j] != 0) { a = first ? LK_DD[j] * ks[j][i] : a + LK_DD[j] * ks[j][i]; first = 0; }
                            }
                            r5[i] = hs * a;
                        }
                        have_r5 = 1;
                    }
                    real theta = (t_out[next] - t) / (hs > tiny ? hs : tiny);
                    theta = theta < 0 ? 0 : (theta > 1 ? 1 : theta);
                    for (int i = 0; i < D; i++) {
                        const real diff = yi[i] - y[i];
                        const real bspl = hs * ks[0][i] - diff;
                        const real r4 = diff - hs * ks[6][i] - bspl;
                        out[(b * n_out + next) * D + i] = y[i] + theta * (diff + (1 - theta)
                            * (bspl + theta * (r4 + (1 - theta) * r5[i])));
                    }
                    next++;
                }
                t = t_new;
                memcpy(y, yi, sizeof(y));
                memcpy(ks[0], ks[6], sizeof(y));
                accepted++;
                for (int i = 0; i < D; i++) if (fabs(y[i]) > bnd) blown = 1;
            }
            real factor;
            if (finite) {
                factor = (real)0.9 * pow(norm > (real)1e-10 ? norm : (real)1e-10, (real)-0.2);
                factor = factor < (real)0.2 ? (real)0.2 : (factor > (real)10 ? (real)10 : factor);
            } else {
                factor = (real)0.2;
            }
            h = hs * factor;
            const real at = fabs(t) > 1 ? fabs(t) : 1;
            const int stuck = !ok && h <= (real)1e-14 * at;
            if (blown || stuck) {
                status[b] = 1;
                stopped_at[b] = t;
                break;
            }
            if (next >= n_out) break;
            if (attempts >= max_steps) {
                status[b] = 2;
                stopped_at[b] = t;
                break;
            }
        }
        (void)acc;
        n_steps[b] = accepted;
    }
}
"""


def _dopri5_tables(real: str) -> str:
    from labkit.core import _tableau as d

    def row(values: tuple[float, ...]) -> str:
        return "{" + ", ".join(repr(float(v)) for v in values) + "}"

    a = [tuple(r) + (0.0,) * (7 - len(r)) for r in d._A]
    return (f"static const real LK_C[7] = {row(d._C)};\n"
            f"static const real LK_A[7][7] = {{{', '.join(row(r) for r in a)}}};\n"
            f"static const real LK_E[7] = {row(d._E)};\n"
            f"static const real LK_DD[7] = {row(d._D)};\n")


def _lanes_field(traced: Traced) -> str:
    printer = _Printer(traced, lanes=True)
    body = printer.primal()
    outs = [f"dy[{k} * W + w] = {printer.name(i)};" for k, i in enumerate(traced.outputs)]
    return ("static inline void lk_field_lanes(real t, const real* restrict y, "
            "const real* restrict p, real* restrict dy) {\n    (void)t; (void)p;\n"
            "    #pragma omp simd\n    for (int w = 0; w < W; w++) {\n        "
            + "\n        ".join(body + outs) + "\n    }\n}\n")


def _lanes_jvp(traced: Traced) -> str:
    printer = _Printer(traced, lanes=True, arrays=True)
    primal = printer.primal()
    aux, lines, d = printer.tangent()
    decl = printer.declarations() + [f"real {n}[W];" for n in printer.aux_names]
    outs = [f"dy[{k} * W + w] = {printer.name(i)};" for k, i in enumerate(traced.outputs)]
    touts = [f"dV[(k * D + {k}) * W + w] = {d.get(i, '(real)0')};"
             for k, i in enumerate(traced.outputs)]
    return ("static inline void lk_field_jvp_lanes(real t, const real* restrict y, "
            "const real* restrict p, const real* restrict V, int m, real* restrict dy, "
            "real* restrict dV) {\n    (void)t; (void)p; (void)V;\n    "
            + "\n    ".join(decl) + "\n    #pragma omp simd\n"
            "    for (int w = 0; w < W; w++) {\n        "
            + "\n        ".join(primal + aux + outs) + "\n    }\n"
            "    for (int k = 0; k < m; k++) {\n        const real* v = V + k * D * W; (void)v;\n"
            "        #pragma omp simd\n        for (int w = 0; w < W; w++) {\n            "
            + "\n            ".join(lines + touts) + "\n        }\n    }\n}\n")


def kernel_source(traced: Traced, real: str) -> str:
    """The C translation unit for ``traced`` with floating type ``real`` (``double`` or
    ``float``)."""
    if real not in ("double", "float"):
        raise ValueError(f"real must be 'double' or 'float', got {real!r}")
    printer = _Printer(traced)
    primal = printer.primal()
    outputs = [printer.name(i) for i in traced.outputs]
    body = "\n    ".join(primal)
    field = (
        "static inline void lk_field(real t, const real* restrict y, const real* restrict p, "
        "real* restrict dy) {\n    (void)t; (void)p;\n    "
        + body + ("\n    " if body else "")
        + "\n    ".join(f"dy[{k}] = {o};" for k, o in enumerate(outputs)) + "\n}\n"
    )
    header = _PRELUDE.format(real=real, dim=traced.n_state, nparams=max(1, traced.n_params),
                             lanes=LANES[real])
    field += _lanes_field(traced) + _lanes_jvp(traced)
    tiny = "DBL_MIN" if real == "double" else "FLT_MIN"
    return (f"/* labkit kernel for {traced.name} ({real}) */\n#include <float.h>\n" + header
            + field + _DRIVERS + _dopri5_tables(real) + _DOPRI5 % {"tiny": tiny})
