"""The bad-input sweep of the public numpy core API: the cases and how each is answered.

Every public function of ``mdq_teach.{maps,bregman,updates,theory,toy,prox,simplex}`` is called
with valid arguments except one, which is replaced by a bad value of its kind (beta <= 0, NaN,
inf, a point outside a map's domain, a wrong shape, an unknown name, a string, None, ...). Each
call is answered in one of these ways (``classify``):

* ``clear``: ValueError or TypeError whose message names the bad argument (the convention);
* ``unnamed``: an exception that does not name the argument (or is of another type);
* ``nonfinite``: no error, a result holding NaN or inf (a silent wrong answer);
* ``accepted``: no error and a finite result, for a value that should have been refused.

``low_precision_cases`` calls the same functions with valid float16 and float32 inputs, each of
which should give a finite result. ``benchmarks/bad_input_sweep.py`` prints the tables;
``tests/test_validation.py`` turns the same cases into parametrised tests, so the two never drift
apart.
"""

from __future__ import annotations

import warnings

import numpy as np

from mdq_teach import bregman, maps, prox, simplex, theory, toy, updates

# Bad values by kind of argument. Each kind lists (label, value).
NAN, INF = float("nan"), float("inf")
# numpy turns a date or a duration into a count of its unit: a number, but not one a caller meant.
DATES = [("datetime64", np.datetime64("2020-01-01")), ("timedelta64", np.timedelta64(1, "s"))]
BAD = {
    "positive": [("0", 0.0), ("-1", -1.0), ("nan", NAN), ("inf", INF), ("-inf", -INF),
                 ("str", "abc"), ("None", None), ("array", [1.0, 2.0]), ("complex", 1j), *DATES],
    "nonneg": [("-1", -1.0), ("nan", NAN), ("inf", INF), ("str", "abc"), ("None", None),
               ("complex", 1j), *DATES],
    "real": [("nan", NAN), ("inf", INF), ("str", "abc"), ("None", None), ("complex", 1j),
             *DATES],
    "array": [("nan", [0.1, NAN]), ("inf", [0.1, INF]), ("str", "abc"), ("None", None),
              ("ragged", [[0.1], [0.1, 0.2]]), ("complex", [0.1j]),
              ("datetime64", np.array(["2020-01-01"], dtype="datetime64[D]")),
              ("timedelta64", np.array([1], dtype="timedelta64[s]"))],
    "levels": [("one level", [1.0]), ("repeat", [0.0, 0.0, 1.0]), ("unsorted", [1.0, -1.0]),
               ("nan", [NAN, 1.0]), ("inf", [-INF, 1.0]), ("str", "abc"), ("2-D", [[0, 1], [2, 3]]),
               ("None-elem", [None, 1.0])],
    "name": [("unknown", "nope"), ("int", 3), ("None", None)],
    "count": [("-1", -1), ("fraction", 2.5), ("nan", NAN), ("str", "abc"), ("huge", 10**400)],
}


def _domain_bad(lo, hi):
    span = hi - lo
    return BAD["array"] + [("above domain", [hi + 0.1 * span]), ("below domain", [lo - 0.1 * span])]


SIMPLEX_BAD = BAD["array"] + [("not summing to 1", [[0.5, 0.6, 0.1]]),
                              ("negative", [[-0.2, 0.6, 0.6]]), ("wrong length", [[0.5, 0.5]])]


def cases():
    """(function label, argument name, kind label, call) for every bad input tried."""
    out = []

    def add(label, fn, kwargs, kinds):
        for arg, bad_values in kinds.items():
            for kind, value in bad_values:
                out.append((label, arg, kind, _bind(fn, {**kwargs, arg: value})))

    interval = [maps.Tanh(), maps.Sigmoid(), maps.ShiftedTanh(), maps.Euclidean()]
    for m in interval:
        mid = [0.5 * (m.lo + m.hi)]
        dom = _domain_bad(m.lo, m.hi)
        name = type(m).__name__
        add(f"{name}.project", m.project, dict(x_tilde=[0.3], beta=2.0),
            {"x_tilde": BAD["array"], "beta": BAD["positive"]})
        add(f"{name}.inverse", m.inverse, dict(x=mid, beta=2.0),
            {"x": dom, "beta": BAD["positive"]})
        add(f"{name}.potential", m.potential, dict(x=mid, beta=2.0),
            {"x": dom, "beta": BAD["positive"]})
        add(f"{name}.bregman", m.bregman, dict(p=mid, q=mid, beta=2.0),
            {"p": dom, "q": dom, "beta": BAD["positive"]})
        add(f"{name}.md_step", m.md_step, dict(x=mid, g=[0.5], eta=0.1, beta=2.0),
            {"x": dom, "g": BAD["array"] + [("wrong shape", [1.0, 2.0, 3.0])],
             "eta": BAD["nonneg"], "beta": BAD["positive"]})
        add(f"{name}.round", m.round, dict(x=mid), {"x": BAD["array"]})
        add(f"updates.md_step_numeric[{name}]", updates.md_step_numeric,
            dict(m=m, x=mid, g=[0.5], eta=0.1, beta=2.0),
            {"x": dom, "eta": BAD["nonneg"], "beta": BAD["positive"], "xatol": BAD["positive"]})
        add(f"updates.md_step_stored[{name}]", updates.md_step_stored,
            dict(m=m, x_tilde=[0.3], g=[0.5], eta=0.1, beta=2.0),
            {"x_tilde": BAD["array"], "g": BAD["array"], "eta": BAD["nonneg"],
             "beta": BAD["positive"]})
    sm = maps.Softmax((-1.0, 0.0, 1.0))
    u = [[0.2, 0.3, 0.5]]
    add("Softmax.project", sm.project, dict(u_tilde=u, beta=2.0),
        {"u_tilde": BAD["array"], "beta": BAD["positive"]})
    add("Softmax.inverse", sm.inverse, dict(u=u, beta=2.0), {"u": SIMPLEX_BAD})
    add("Softmax.bregman", sm.bregman, dict(p=u, q=u, beta=2.0),
        {"p": SIMPLEX_BAD, "q": SIMPLEX_BAD, "beta": BAD["positive"]})
    add("Softmax.md_step", sm.md_step, dict(u=u, g=[[0.1, 0.2, 0.3]], eta=0.1, beta=2.0),
        {"u": SIMPLEX_BAD, "g": BAD["array"], "eta": BAD["nonneg"], "beta": BAD["positive"]})
    add("Softmax.weights", sm.weights, dict(u=u), {"u": SIMPLEX_BAD})
    add("maps.get_map", maps.get_map, dict(name="shifted_tanh", levels=None),
        {"name": BAD["name"], "levels": BAD["levels"]})
    for cls in (maps.ShiftedTanh, maps.Softmax):
        add(f"maps.{cls.__name__}()", cls, dict(levels=(-1.0, 0.0, 1.0)), {"levels": BAD["levels"]})

    p = [0.2, 0.3, 0.5]
    add("bregman.kl", bregman.kl, dict(p=p, q=p), {"p": SIMPLEX_BAD, "q": SIMPLEX_BAD})
    add("bregman.negative_entropy", bregman.negative_entropy, dict(u=p),
        {"u": BAD["array"] + [("negative", [-0.1, 1.1])]})

    # Theorem 2's arguments broadcast as arrays (a range of t for a plot), so arrays are valid.
    positive_arrays_ok = [b for b in BAD["positive"] if b[0] != "array"]
    add("theory.md_bound", theory.md_bound, dict(R=1.0, L=1.0, rho=1.0, B=2.0, t=10),
        {"R": positive_arrays_ok, "L": positive_arrays_ok, "rho": positive_arrays_ok,
         "B": positive_arrays_ok + [("below 1", 0.5)], "t": positive_arrays_ok})
    add("theory.md_step_size", theory.md_step_size, dict(R=1.0, L=1.0, rho=1.0, B=2.0, t=10),
        {"R": positive_arrays_ok, "B": positive_arrays_ok})

    add("toy.nearest_level", toy.nearest_level, dict(v=[0.3], levels=(-1.0, 1.0)),
        {"v": BAD["array"], "levels": BAD["levels"]})
    add("toy.w_regularizer", toy.w_regularizer, dict(x=[0.3], levels=(-1.0, 1.0), form="l1"),
        {"x": BAD["array"], "levels": BAD["levels"], "form": BAD["name"]})
    add("toy.prox_w", toy.prox_w, dict(v=[0.3], tau=0.5, levels=(-1.0, 1.0), form="l2"),
        {"v": BAD["array"], "tau": BAD["positive"], "levels": BAD["levels"], "form": BAD["name"]})
    add("toy.betas", toy.betas, dict(beta=1.0, steps=10, beta_growth=1.1, beta_max=INF),
        {"beta": BAD["positive"], "steps": BAD["count"],
         "beta_growth": BAD["real"] + [("below 1", 0.5), ("overflows", 1e300)],
         "beta_max": [("nan", NAN), ("str", "abc"), ("below beta", 0.5)]})
    add("toy.run", toy.run,
        dict(method="md-tanh", problem="quadratic", x_tilde0=1.2, beta=4.0, eta=0.1, steps=5),
        {"method": BAD["name"], "problem": BAD["name"], "x_tilde0": BAD["real"],
         "beta": BAD["positive"], "eta": BAD["positive"], "steps": BAD["count"]})
    add("toy.Quadratic", toy.Quadratic, dict(center=-1.0), {"center": BAD["real"]})
    add("toy.BoxQuadratic", toy.BoxQuadratic, dict(target=[0.5, -2.0]), {"target": BAD["array"]})

    for qname in sorted(prox.QUANTIZERS):
        q = prox.get_quantizer(qname)
        add(f"prox.{type(q).__name__}()", q, dict(theta=[0.3], beta=2.0),
            {"theta": BAD["array"], "beta": [b for b in BAD["positive"] if b[0] != "inf"]})
        add(f"prox.{type(q).__name__}.regulariser", q.regulariser, dict(w=[0.3], beta=2.0),
            {"w": BAD["array"], "beta": [b for b in BAD["positive"] if b[0] != "inf"]})
    add("prox.get_quantizer", prox.get_quantizer, dict(name="tanh", levels=(-1.0, 1.0)),
        {"name": BAD["name"], "levels": BAD["levels"]})
    add("prox.proxconnect_step", prox.proxconnect_step,
        dict(theta=[0.3], grad=[0.1], eta=0.1, quantizer=prox.TanhQuantizer(), beta=2.0),
        {"theta": BAD["array"], "grad": BAD["array"], "eta": BAD["positive"],
         "beta": [b for b in BAD["positive"] if b[0] != "inf"]})
    add("prox.post_training_quantize", prox.post_training_quantize,
        dict(w=[0.3], quantizer=(-1.0, 1.0)), {"w": BAD["array"], "quantizer": BAD["levels"]})

    add("Softmax.round", sm.round, dict(u=u), {"u": BAD["array"]})
    add("Softmax.lift_gradient", sm.lift_gradient, dict(g_w=[0.3]), {"g_w": BAD["array"]})
    add("bregman.bregman", bregman.bregman,
        dict(phi=bregman.negative_entropy, grad_phi=bregman.negative_entropy_grad, p=p, q=p),
        {"p": BAD["array"], "q": BAD["array"]})
    add("bregman.three_point_identity", bregman.three_point_identity,
        dict(phi=bregman.negative_entropy, grad_phi=bregman.negative_entropy_grad, a=p, b=p, c=p),
        {"a": BAD["array"], "b": BAD["array"], "c": BAD["array"]})
    add("theory.check_projection", theory.check_projection, dict(P=np.tanh, lo=-1.0, hi=1.0),
        {"lo": BAD["real"], "hi": BAD["real"], "s_max": BAD["positive"]})
    add("theory.is_proximal_map", theory.is_proximal_map, dict(P=np.tanh, lo=-1.0, hi=1.0),
        {"lo": BAD["real"], "hi": BAD["real"], "n": BAD["count"] + [("1", 1)]})
    add("toy.pq_objective", toy.pq_objective,
        dict(problem="quadratic", x=[0.3], beta=2.0, form="l1", levels=(-1.0, 1.0)),
        {"problem": BAD["name"], "x": BAD["array"], "beta": BAD["positive"],
         "form": BAD["name"], "levels": BAD["levels"]})
    add("toy.averaged_gap", toy.averaged_gap, dict(problem="quadratic", iterates=[0.3, 0.2]),
        {"problem": BAD["name"], "iterates": BAD["array"]})
    add("toy.run[pq-l2]", toy.run,
        dict(method="pq-l2", problem="quadratic", x_tilde0=1.2, beta=4.0, eta=0.1, steps=5,
             levels=(-1.0, 1.0), clamp=True),
        {"levels": BAD["levels"], "clamp": [("str", "yes"), ("None", None), ("int", 2)]})
    add("toy.run[bc]", toy.run,
        dict(method="bc", problem="quadratic", x_tilde0=1.2, beta=4.0, eta=0.1, steps=5,
             cancel_gradient=True),
        {"cancel_gradient": [("str", "yes"), ("None", None)],
         "beta_growth": BAD["real"] + [("below 1", 0.5)], "beta_max": [("nan", NAN)]})
    add("toy.BoxQuadratic.random", toy.BoxQuadratic.random, dict(n=3, scale=2.0, seed=0),
        {"n": BAD["count"] + [("0", 0)], "scale": BAD["positive"]})
    add("prox.dual_averaging", prox.dual_averaging,
        dict(grad=lambda w: w, theta0=[0.3], etas=[0.1, 0.1],
             regulariser=lambda c: np.zeros_like(c), candidates=(-1.0, 1.0)),
        {"theta0": BAD["array"], "etas": BAD["array"] + [("negative", [-0.1])],
         "candidates": BAD["array"]})
    add("prox.TanhQuantizer.inverse", prox.TanhQuantizer().inverse, dict(w=[0.3], beta=2.0),
        {"w": BAD["array"], "beta": [b for b in BAD["positive"] if b[0] != "inf"]})
    game = simplex.MatrixGame.random(3, 2)
    add("simplex.run", simplex.run, dict(method="eg", problem=game, eta=0.1, steps=5),
        {"method": BAD["name"], "eta": BAD["positive"], "steps": BAD["count"] + [("0", 0)],
         "x0": [b for b in BAD["array"] if b[0] != "None"]  # None: the uniform start
         + [("not summing to 1", [0.5, 0.6, 0.1])]})
    add("simplex.theory_bound", simplex.theory_bound, dict(method="eg", problem=game, steps=10),
        {"method": BAD["name"], "steps": BAD["real"] + [("0", 0)]})
    add("simplex.theory_step", simplex.theory_step, dict(method="pgd", problem=game, steps=10),
        {"method": BAD["name"], "steps": BAD["count"] + [("0", 0)]})
    add("simplex.MatrixGame", simplex.MatrixGame, dict(payoff=[[1.0, 0.0], [0.0, 1.0]]),
        {"payoff": BAD["array"]})
    add("simplex.pgd_step", simplex.pgd_step, dict(x=[0.5, 0.5], g=[1.0, 0.0], eta=0.1),
        {"x": BAD["array"], "g": BAD["array"], "eta": BAD["positive"]})
    add("simplex.project_simplex", simplex.project_simplex, dict(v=[0.2, 0.9]),
        {"v": BAD["array"]})
    add("simplex.eg_step", simplex.eg_step, dict(x=[0.5, 0.5], g=[1.0, 0.0], eta=0.1),
        {"x": BAD["array"], "g": BAD["array"], "eta": BAD["positive"]})
    return out


def _bind(fn, kwargs):
    return lambda: fn(**kwargs)


def classify(arg: str, call) -> tuple[str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = call()
        except (ValueError, TypeError) as err:
            msg = str(err)
            return ("clear" if arg in msg else "unnamed"), f"{type(err).__name__}: {msg}"
        except Exception as err:  # noqa: BLE001 - any other exception is what we count
            return "unnamed", f"{type(err).__name__}: {err}"
    try:
        values = [np.asarray(r, dtype=float) for r in (result if isinstance(result, tuple)
                                                       else (result,))]
        finite = all(np.all(np.isfinite(v)) for v in values)
    except (TypeError, ValueError):
        finite = True
    return ("accepted" if finite else "nonfinite"), repr(result)[:80]


def low_precision_cases():
    """(label, dtype, call) for valid float16 / float32 inputs; each should give a finite result."""
    out = []
    for dtype in (np.float16, np.float32):
        for m in (maps.Tanh(), maps.Sigmoid(), maps.ShiftedTanh(), maps.Euclidean()):
            x = np.asarray([m.lo + 0.25 * (m.hi - m.lo), m.hi], dtype=dtype)
            g = np.asarray([0.5, -0.5], dtype=dtype)
            name = type(m).__name__
            out += [
                (f"{name}.project", dtype, _bind(m.project, dict(x_tilde=x, beta=4.0))),
                (f"{name}.inverse", dtype, _bind(m.inverse, dict(x=x[:1], beta=4.0))),
                (f"{name}.potential", dtype, _bind(m.potential, dict(x=x, beta=4.0))),
                (f"{name}.bregman", dtype, _bind(m.bregman, dict(p=x, q=x[:1], beta=4.0))),
                (f"{name}.md_step", dtype, _bind(m.md_step, dict(x=x, g=g, eta=0.1, beta=4.0))),
            ]
        sm = maps.Softmax((-1.0, 0.0, 1.0))
        u = np.asarray([0.1, 0.2, 0.7], dtype=dtype)
        out += [
            ("Softmax.md_step", dtype,
             _bind(sm.md_step, dict(u=u, g=np.asarray([1, 0, -1], dtype), eta=0.1, beta=4.0))),
            ("Softmax.bregman", dtype, _bind(sm.bregman, dict(p=u, q=u[::-1], beta=4.0))),
            ("bregman.kl", dtype, _bind(bregman.kl, dict(p=u, q=u[::-1]))),
            ("bregman.kl (1/3 each)", dtype,
             _bind(bregman.kl, dict(p=np.full(3, 1 / 3, dtype), q=u))),
        ]
    return out
