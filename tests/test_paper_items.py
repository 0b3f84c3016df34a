"""Items of the two papers that no other test checks directly, against independent computations.

The other tests of the fidelity table live next to the code they test; these are the steps of the
paper's derivations (the KKT conditions behind Eq. 15, the three inequalities of the proof of
Theorem 2), its convex-hull statements, the experiment tables the presets follow, and two claims of
the ProxConnect abstract.
"""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import linprog, minimize

from mdq_teach import prox, simplex, toy
from mdq_teach.maps import Softmax, Tanh

interior = st.floats(-0.999, 0.999)


def _in_convex_hull(point, vertices):
    """Feasibility of point = sum_i c_i vertex_i with c >= 0, sum c = 1 (a linear programme)."""
    v = np.asarray(vertices, dtype=float).reshape(len(vertices), -1)
    a_eq = np.vstack([v.T, np.ones(len(v))])
    b_eq = np.append(np.ravel(point), 1.0)
    return linprog(np.zeros(len(v)), A_eq=a_eq, b_eq=b_eq, bounds=(0, None)).status == 0


# -- Sec. 2.2: the two relaxations --------------------------------------------------------------


@pytest.mark.fidelity("md:eq7")
def test_convex_hull_of_the_level_grid_is_the_box():
    levels, m = (-1.0, 0.25, 2.0), 3
    vertices = list(itertools.product(levels, repeat=m))
    rng = np.random.default_rng(0)
    for x in rng.uniform(-1.0, 2.0, size=(10, m)):
        assert _in_convex_hull(x, vertices)
    for x in ([2.01, 0.0, 0.0], [0.0, -1.05, 1.0]):  # just outside [q_min, q_max]^m
        assert not _in_convex_hull(x, vertices)


@pytest.mark.fidelity("md:eq9")
def test_convex_hull_of_one_hot_rows_is_the_product_of_simplices_and_maps_onto_the_box():
    d, m = 3, 2
    one_hot = np.eye(d)
    vertices = [np.stack(rows) for rows in itertools.product(one_hot, repeat=m)]
    rng = np.random.default_rng(1)
    for u in rng.dirichlet(np.ones(d), size=(5, m)):
        assert _in_convex_hull(u, vertices)
    assert not _in_convex_hull(np.array([[0.6, 0.6, -0.2], [1.0, 0.0, 0.0]]), vertices)
    # u -> u q sends the product of simplices onto the box: inside it, and every point is reached.
    sm = Softmax((-1.0, 0.0, 1.0))
    w = sm.weights(rng.dirichlet(np.ones(d), size=50))
    assert np.all((w >= -1) & (w <= 1))
    for target in (-1.0, -0.4, 0.0, 0.7, 1.0):
        u = np.array([max(-target, 0.0), 1 - abs(target), max(target, 0.0)])
        assert sm.weights(u) == pytest.approx(target)


# -- Sec. 2.1: the two-step form of mirror descent ---------------------------------------------


@pytest.mark.fidelity("md:eq4")
def test_two_step_mirror_descent_on_the_simplex_with_a_numerical_bregman_projection():
    """Negative entropy on the orthant: dual step, then the argmin of the KL over the simplex."""
    rng = np.random.default_rng(2)
    for _ in range(5):
        x, g, eta = rng.dirichlet(np.ones(4)), rng.normal(size=4), 0.7
        y = np.exp(np.log(x) - eta * g)  # grad Phi(y) = grad Phi(x) - eta g, Phi = sum u log u - u

        def kl(p, y=y):  # generalised KL: the divergence of Phi on the orthant
            p = np.clip(p, 1e-300, None)
            return float(np.sum(p * np.log(p / y) - p + y))

        res = minimize(kl, np.full(4, 0.25), method="SLSQP", bounds=[(0, 1)] * 4,
                       constraints={"type": "eq", "fun": lambda p: p.sum() - 1}, tol=1e-14)
        np.testing.assert_allclose(simplex.eg_step(x, g, eta), res.x, atol=1e-6)


@pytest.mark.fidelity("md:eq34")
@pytest.mark.parametrize("method", ["eg", "pgd"])
def test_standard_md_bound_with_constants_written_here(method):
    """Eq. 34 for the matrix game of chapter 2: EG (entropy, l1) and PGD (Euclidean, l2)."""
    game = simplex.MatrixGame.random(200, 10, seed=4)
    a, d, t = game.payoff, game.dim, 200
    if method == "eg":  # R^2 = log d from the uniform start, L = max |g|_inf, rho = 1 (Pinsker)
        r2, lip = np.log(d), np.abs(a).max()
    else:  # R^2 = max |x - x0|^2 / 2 over the simplex, L = the largest column norm
        r2, lip = (1 - 1 / d) / 2, np.linalg.norm(a, axis=0).max()
    eta, bound = np.sqrt(r2) / lip * np.sqrt(2 / t), np.sqrt(r2) * lip * np.sqrt(2 / t)
    x, total = np.full(d, 1 / d), np.zeros(d)
    for _ in range(t):
        total += x
        g = a[:, np.argmax(a.T @ x)]
        if method == "eg":
            x = x * np.exp(-eta * (g - g.min()))
            x /= x.sum()
        else:
            x = simplex.project_simplex(x - eta * g)
    gap = np.max(a.T @ (total / t)) - game.optimum
    assert 0 < gap <= bound
    assert simplex.theory_bound(method, game, t) == pytest.approx(bound)
    assert simplex.theory_step(method, game, t) == pytest.approx(eta)


@pytest.mark.fidelity("md:eq16")
@given(st.lists(st.floats(-5, 5), min_size=3, max_size=3), st.floats(-50, 50), st.floats(0.1, 10))
def test_softmax_is_invariant_to_adding_a_constant(u_tilde, c, beta):
    m, u_tilde = Softmax((-1.0, 0.0, 1.0)), np.array(u_tilde)
    np.testing.assert_allclose(m.project(u_tilde + c, beta), m.project(u_tilde, beta), rtol=1e-9)


# -- App. A.2: the KKT derivation of Eq. 15 ----------------------------------------------------


def _d_tanh(w, v, beta):
    """Eq. 27, with its last term log((1 - v)(1 + v)); the paper prints log((1 - v)(1 - v))."""
    return (
        w * np.log((1 + w) * (1 - v) / ((1 - w) * (1 + v))) + np.log((1 - w) * (1 + w))
        - np.log((1 - v) * (1 + v))
    ) / (2 * beta)


def _phi_tanh(w, beta):  # Eq. 14, written out again
    return ((1 + w) * np.log1p(w) + (1 - w) * np.log1p(-w)) / (2 * beta)


@pytest.mark.fidelity("md:eq27")
@given(interior, interior, st.floats(0.2, 10))
def test_tanh_bregman_divergence_eq_27(w, v, beta):
    eq3 = _phi_tanh(w, beta) - _phi_tanh(v, beta) - np.arctanh(v) / beta * (w - v)
    assert _d_tanh(w, v, beta) == pytest.approx(eq3, rel=1e-6, abs=1e-9)
    assert Tanh().bregman(w, v, beta) == pytest.approx(eq3, rel=1e-6, abs=1e-9)


def test_the_printed_eq_27_is_off_by_log_of_1_plus_v_over_1_minus_v():
    w, v, beta = 0.2, 0.5, 1.0
    printed = (
        w * np.log((1 + w) * (1 - v) / ((1 - w) * (1 + v))) + np.log((1 - w) * (1 + w))
        - np.log((1 - v) * (1 - v))
    ) / (2 * beta)
    assert printed - _d_tanh(w, v, beta) == pytest.approx(np.log((1 + v) / (1 - v)) / 2)


@pytest.mark.fidelity("md:eq29", "md:eq30", "md:eq31", "md:eq32")
@given(interior, st.floats(-5, 5), st.floats(0.01, 1), st.floats(0.2, 8))
def test_md_tanh_step_satisfies_the_kkt_conditions_with_zero_multipliers(w0, g, eta, beta):
    w1 = float(Tanh().md_step(w0, g, eta, beta))
    assert -1 < w1 < 1 or abs(eta * g * beta) > 15  # Eq. 31: both box constraints slack
    if not -0.999999 < w1 < 0.999999:
        return  # the residual below is then dominated by the rounding of w1 itself

    def lagrangian(w, y=0.0, z=0.0):  # Eq. 29 (constant terms of the divergence included)
        return eta * g * w + y * (-w - 1) + z * (w - 1) + _d_tanh(w, w0, beta)

    # Eq. 30/32: the derivative of the Lagrangian vanishes at the step, checked two ways.
    stationarity = eta * g + np.log((1 + w1) * (1 - w0) / ((1 - w1) * (1 + w0))) / (2 * beta)
    assert stationarity == pytest.approx(0, abs=1e-7 * (1 + 1 / (beta * (1 - abs(w1)))))
    h = 1e-6 * (1 - abs(w1))
    fd = (lagrangian(w1 + h) - lagrangian(w1 - h)) / (2 * h)
    assert fd == pytest.approx(0, abs=1e-4 / (beta * (1 - abs(w1))))


# -- App. A.3: the proof of Theorem 2, one inequality at a time --------------------------------


@pytest.mark.fidelity("md:eq35")
@given(st.floats(-0.99, 0.99), st.floats(-3, 3), st.floats(0.01, 1), st.floats(1, 8))
def test_annealed_md_step_is_a_dual_step_in_atanh_over_beta(x, g, eta, beta):
    x1 = float(Tanh().md_step(x, g, eta, beta))
    if abs(x1) < 1 - 1e-9:
        assert np.arctanh(x1) / beta == pytest.approx(np.arctanh(x) / beta - eta * g, abs=1e-6)


def _annealed_run(seed=0, n=4, steps=60, growth=1.1, cap=5.0, eta=0.05):
    problem = toy.BoxQuadratic.random(n, seed=seed)
    betas = np.minimum(growth ** np.arange(steps), cap)
    x = [np.zeros(n)]
    for beta in betas:
        g = problem.grad(x[-1])
        x.append(np.tanh(np.arctanh(x[-1]) - beta * eta * g))  # Eq. 35, written out
    return problem, betas, np.array(x), eta, cap


def _d(x, y, beta):  # D_{Phi/beta} for the tanh mirror map, summed over coordinates
    phi = lambda v: np.sum(_phi_tanh(v, 1.0))
    return (phi(x) - phi(y) - np.dot(np.arctanh(y), x - y)) / beta


@pytest.mark.fidelity("md:eq36")
def test_one_step_inequality_of_the_proof():
    problem, betas, x, eta, _ = _annealed_run()
    ref = np.clip(problem.minimizer, -0.999999, 0.999999)  # x -> x*, from inside the domain
    for k, beta in enumerate(betas):
        lhs = problem.f(x[k]) - problem.f(ref)
        d = lambda p, q, beta=beta: _d(p, q, beta)
        three_point = (d(ref, x[k]) + d(x[k], x[k + 1]) - d(ref, x[k + 1])) / eta
        linear = np.dot(problem.grad(x[k]), x[k] - ref)
        assert linear == pytest.approx(three_point, rel=1e-6, abs=1e-9)
        assert lhs <= three_point + 1e-9


@pytest.mark.fidelity("md:eq37")
def test_telescoping_sum_is_at_most_the_divergence_from_the_start():
    problem, betas, x, _, _ = _annealed_run()
    ref = np.clip(problem.minimizer, -0.999999, 0.999999)
    total = sum(_d(ref, x[k], 1.0) / b - _d(ref, x[k + 1], 1.0) / b for k, b in enumerate(betas))
    assert total <= _d(ref, x[0], 1.0) + 1e-12
    assert total > 0  # not vacuous: the iterates do approach the optimum


@pytest.mark.fidelity("md:eq38")
def test_local_term_is_at_most_eta_l_squared_b_over_two_rho():
    problem, betas, x, eta, cap = _annealed_run()
    lipschitz, rho = problem.lipschitz, 1.0  # tanh mirror map: Hessian 1 / (1 - x^2) >= 1
    local = [_d(x[k], x[k + 1], b) for k, b in enumerate(betas)]  # y^{k+1} = x^{k+1} inside
    assert max(local) <= (eta * lipschitz) ** 2 * cap / (2 * rho)
    assert max(local) > 0


# -- App. B.4: the experiment tables that --preset paper follows ----------------------------


def _preset(**kw):
    train = pytest.importorskip("mdq_teach.nn.trainer")
    return train.resolve_config(train.TrainConfig(preset="paper", **kw))


@pytest.mark.fidelity("md:tab6")
def test_paper_preset_uses_table_6_batch_size_and_iterations():
    for dataset in ("cifar10", "cifar100"):
        c = _preset(dataset=dataset, arch="resnet18", method="md-tanh-s")
        assert (c.batch_size, c.iterations) == (128, 100_000)


@pytest.mark.fidelity("md:tab10")
def test_paper_preset_for_mobilenetv2_is_table_10():
    # (dataset, method): learning_rate, lr_scale, beta_scale, beta_scale_interval, from Table 10
    table10 = {
        ("cifar10", "md-softmax-s"): (0.01, 0.3, 1.1, 1000),
        ("cifar10", "md-tanh-s"): (0.01, 0.2, 1.2, 2000),
        ("cifar100", "md-softmax-s"): (0.01, 0.1, 1.1, 500),
        ("cifar100", "md-tanh-s"): (0.01, 0.1, 1.02, 100),
    }
    for (dataset, method), expected in table10.items():
        c = _preset(dataset=dataset, arch="mobilenetv2", method=method)
        assert (c.lr, c.lr_scale, c.beta_scale, c.beta_scale_interval) == expected
        assert "Table 10" in c.preset_source
    bc = _preset(dataset="cifar100", arch="mobilenetv2", method="bc")
    assert (bc.lr, bc.lr_scale) == (0.001, 0.2)


# -- ProxConnect -------------------------------------------------------------------------------


@pytest.mark.fidelity("pc:c2")
def test_dual_averaging_is_a_generalised_conditional_gradient_method():
    """GCG on the dual: average the gradients with weights eta_t / mu_{t+1}, then one argmin."""
    rng = np.random.default_rng(3)
    a = np.array([-0.3, 0.45, 1.7])
    grad = lambda w: 2 * (w - a)
    etas = rng.uniform(0.01, 0.2, 60)
    theta0 = np.array([0.7, -0.2, 0.05])
    grid = np.linspace(-1.5, 1.5, 601)
    r = lambda c: 0.8 * np.abs(c) + 0.3 * (np.abs(c) > 1)  # convex plus a step: mu_t matters
    da = prox.dual_averaging(grad, theta0, etas, r, grid)

    w = grid[np.argmin(np.abs(grid[None, :] - theta0[:, None]), axis=1)]  # mu = 0: the nearest
    assert np.array_equal(w, da[0])
    u, mu, gcg = np.zeros(3), 0.0, [w]
    for eta in etas:
        lam = eta / (mu + eta)
        u, mu = (1 - lam) * u + lam * grad(w), mu + eta  # convex combination with the new vertex
        h = r(grid)[None, :] + (grid[None, :] - theta0[:, None]) ** 2 / (2 * mu)
        w = grid[np.argmin(u[:, None] * grid[None, :] + h, axis=1)]
        gcg.append(w)
    np.testing.assert_array_equal(np.array(gcg), da)
    assert len({tuple(row) for row in da}) > 5  # the iterates do move


@pytest.mark.fidelity("pc:d2")
@pytest.mark.parametrize("name, beta, r2, rho", [
    ("tanh", 1.0, np.log(2), 1.0),
    ("tanh", 0.5, np.log(2) / 0.5, 1 / 0.5),
    ("linear", 1.0, 0.5, 1.0),
])
def test_proxconnect_with_a_convex_regulariser_meets_the_dual_averaging_bound(name, beta, r2, rho):
    problem = toy.Quadratic(center=-1.0)
    lipschitz = 4.0  # |f'(w)| = |2(w + 1)| <= 4 on [-1, 1]
    quantizer = prox.get_quantizer(name)
    for horizon in (10, 100, 1000):
        eta = np.sqrt(r2) / lipschitz * np.sqrt(rho / (2 * horizon))
        w = toy.run("proxconnect", problem, 0.0, beta, eta, horizon - 1, quantizer=quantizer)
        gap = (np.mean(w) + 1.0) ** 2  # f(average) - f*, computed here
        assert 0 < gap <= 2 * np.sqrt(r2) * lipschitz * np.sqrt(2 / (rho * horizon))
