"""Fit one linear mixed model by maximum likelihood, as lme4 does: the design
matrices of its fixed and random effects, the profiled deviance and its fit.

Fitting (ProfiledDeviance, fit_mixed_model) follows lme4 (Bates, Maechler, Bolker and
Walker 2015, J Stat Softw 67(1), section 3): the deviance is profiled over the fixed
effects and the residual variance, leaving a function of theta alone, the relative
covariance factor's Cholesky entries (each random effect's sd relative to the residual
sd); it needs only each participant's cross products, summed once per fit, and costs
about a millisecond per evaluation. BFGS minimises it with its analytic gradient and
without bounds: the deviance is even in each sd, so a variance whose maximum is at zero
is approached from either side, whereas a bound would stop the optimiser wherever a
step reached zero, a stationary point by that symmetry. Reduced models start from the
full model's theta. The log-likelihoods agree with lme4's (``lmer(REML = FALSE)``) to
within 2e-8 on the 130-participant benchmark table and 6e-7 on a simulated one missing
5% of its cells, ours the higher; the fixed-effect standard errors are lme4's,
residual variance x (X' V^-1 X)^-1 (benchmarks/mixed_models.py runs both side by side).

This replaced statsmodels' ``MixedLM``, which gave the same estimates (the tests check
the two against each other; its standard errors invert the Hessian of every parameter,
which equals lme4's for the saturated full model when every participant has every
cell) but took 0.7-1.2 s a fit on the benchmark table, 3.8 s when BFGS stalled at a
zero variance and Powell refitted, against lme4's 0.1-0.45 s; ours take 0.01-0.2 s.
Even from the optimum, statsmodels spent 0.24 s building its results (the Hessian of
every parameter, by loops over participants): more than twice lme4's fastest fit.
"""

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, optimize

CONDITION_INTERCEPT = "participant:condition intercept"
SESSION_CONDITION_INTERCEPT = "participant:session:condition intercept"
SESSION_CONDITION_SHAPE = "participant:session:condition shape"
CONDITION_BIN_INTERCEPT = "participant:condition:bin intercept"
SESSION_INTERCEPT = "participant:session intercept"
# Time constant of the response shape 1 - exp(-t / tau) that a participant's own
# asymptote deviation follows: the prior median rate of the asymptotic model (0.5/s).
SHAPE_TIME_CONSTANT_S = 2.0


# BFGS stops when every partial derivative of the deviance in theta is below
# DEVIANCE_GTOL: with the second derivatives of the 130-participant benchmark table
# (100-400) the deviance is then within 1e-10 of its minimum, and the log-likelihoods
# within 3e-8 of lme4's (above them). Round-off in the deviance (1e-11 of its 1e4) can
# end the line search first ("precision loss"); the fit counts as converged if the
# gradient is then below CONVERGED_GRADIENT.
DEVIANCE_GTOL = 1e-4
CONVERGED_GRADIENT = 1e-3
# lme4's isSingular tolerance on the relative factor's diagonal (in residual sds)
SINGULAR_TOLERANCE = 1e-4


def design_matrix(frame, terms, levels):
    """Treatment-coded fixed-effect columns, named like ``group[x]:condition[y]``.

    Each term is a tuple of factors; its columns are the products of the factors'
    indicator columns for every level but the first.
    """
    columns = {"Intercept": np.ones(len(frame))}
    for term in terms:
        term_columns = {"": np.ones(len(frame))}
        for factor in term:
            values = frame[factor].to_numpy()
            term_columns = {
                _join_labels(name, f"{factor}[{level}]"): column
                * (values == level).astype(float)
                for name, column in term_columns.items()
                for level in levels[factor][1:]
            }
        columns.update(term_columns)
    return pd.DataFrame(columns, index=frame.index)


def _join_labels(term_label, factor_label):
    return f"{term_label}:{factor_label}" if term_label else factor_label


def fit_mixed_model(
    data,
    terms,
    levels,
    random_effects="condition_shape",
    start=None,
    crossover=False,
    left_out=(),
):
    """ML fit of one muscle's model with the given fixed-effect terms.

    start: theta to start the optimiser from (e.g. the full model's, for a reduced
    model); None starts from lme4's default, every random effect's sd equal to the
    residual's and no correlations. crossover, left_out: see
    random_effects_design. Returns a MixedModelFit.
    """
    unstructured, shared = random_effects_design(
        data, levels, random_effects, crossover, left_out
    )
    fixed = design_matrix(data, terms, levels)
    deviance = ProfiledDeviance(
        data["y"].to_numpy(float),
        fixed.to_numpy(),
        np.column_stack(
            [unstructured.to_numpy(), *(block.to_numpy() for block in shared.values())]
        ),
        data["participant"].to_numpy(),
        n_unstructured=unstructured.shape[1],
        shared_sizes=[block.shape[1] for block in shared.values()],
    )
    start = deviance.default_start() if start is None else deviance.restart(start)
    optimum = optimize.minimize(
        deviance, start, jac=True, method="BFGS", options={"gtol": DEVIANCE_GTOL}
    )
    largest_gradient = np.abs(optimum.jac).max()
    converged = bool(optimum.success or largest_gradient <= CONVERGED_GRADIENT)
    beta, beta_covariance, covariance, residual_variance = deviance.estimates(optimum.x)
    n_unstructured = unstructured.shape[1]
    return MixedModelFit(
        fixed_effects=pd.Series(beta, index=fixed.columns),
        fixed_effects_covariance=pd.DataFrame(
            beta_covariance, index=fixed.columns, columns=fixed.columns
        ),
        participant_covariance=pd.DataFrame(
            covariance[:n_unstructured, :n_unstructured],
            index=unstructured.columns,
            columns=unstructured.columns,
        ),
        shared_variances=pd.Series(
            {
                name: covariance[block[0], block[0]]
                for name, block in zip(shared, deviance.shared_blocks)
            },
            dtype=float,
        ),
        residual_variance=residual_variance,
        loglik=-optimum.fun / 2,
        theta=optimum.x,
        n_observations=deviance.n_observations,
        n_participants=deviance.n_participants,
        converged=converged,
        message=f"BFGS: {optimum.message} (largest gradient {largest_gradient:.2g})",
    )


@dataclass(frozen=True)
class MixedModelFit:
    """One model's ML estimates, in the units of y, and its fit statistics.

    participant_covariance: the covariance of the random effects with an unstructured
    covariance, named by their design columns; shared_variances: the variance of the
    random effects that share one (empty unless ``condition_shape``);
    fixed_effects_covariance: residual_variance x (X' V^-1 X)^-1 at the estimated
    covariance, lme4's ``vcov``. theta: where the optimiser stopped (see
    ProfiledDeviance), a start for related models. message: the optimiser's.
    """

    fixed_effects: pd.Series
    fixed_effects_covariance: pd.DataFrame
    participant_covariance: pd.DataFrame
    shared_variances: pd.Series
    residual_variance: float
    loglik: float
    theta: np.ndarray
    n_observations: int
    n_participants: int
    converged: bool
    message: str

    @property
    def n_parameters(self):
        """Fixed effects, covariance parameters and the residual variance."""
        n_unstructured = len(self.participant_covariance)
        return (
            len(self.fixed_effects)
            + n_unstructured * (n_unstructured + 1) // 2
            + len(self.shared_variances)
            + 1
        )

    @property
    def aic(self):
        return -2 * self.loglik + 2 * self.n_parameters

    @property
    def bic(self):
        return -2 * self.loglik + np.log(self.n_observations) * self.n_parameters

    @property
    def singular(self):
        """Whether the unstructured participant covariance is singular, judged like
        lme4's ``isSingular``: a diagonal entry of its relative Cholesky factor below
        SINGULAR_TOLERANCE."""
        rows, columns = np.tril_indices(len(self.participant_covariance))
        diagonal = self.theta[: len(rows)][rows == columns]
        return bool(np.abs(diagonal).min() < SINGULAR_TOLERANCE)


class ProfiledDeviance:
    """-2 x the ML log-likelihood of one model as a function of theta alone, as lme4
    computes it (Bates, Maechler, Bolker and Walker 2015, J Stat Softw 67(1), section
    3), with its gradient; for scipy.optimize.minimize(jac=True).

    For each participant p: y_p = X_p b + Z_p Lambda u_p + e_p with u_p ~ N(0, s2 I)
    and e_p ~ N(0, s2 I), so the random effects Lambda u_p have covariance
    s2 Lambda Lambda'. Lambda is block diagonal: a lower-triangular factor for the
    first n_unstructured columns of Z, then for each later block of columns (their
    sizes shared_sizes, by default one block of all the rest) one standard deviation
    its columns share, all relative to the residual sd s. theta holds the factor's
    lower triangle row by row, then the blocks' shared sds in order.

    For a given theta, b and s2 have closed forms. With A_p = Lambda' Z_p'Z_p Lambda + I
    = L_p L_p', the cross product of [X y] left after the random effects,
    S = [X y]'[X y] - sum_p W_p'W_p with W_p = L_p^-1 Lambda' Z_p'[X y]_p, has a
    Cholesky factor that gives b and the penalised residual sum of squares r2, and

        deviance = sum_p log|A_p| + n (1 + log(2 pi r2 / n)),    s2 = r2 / n.

    Only the per-participant cross products Z_p'Z_p and Z_p'[X y]_p enter, summed once
    here, so an evaluation costs about a millisecond for 130 participants. The
    gradient: d log|A_p| = 2 tr(A_p^-1 Lambda' Z_p'Z_p dLambda) and, r2 being a minimum
    over b and u, d r2 = -2 sum_p e_p' Z_p dLambda u_p at the minimiser (e_p: the
    residuals y_p - X_p b - Z_p Lambda u_p).
    """

    def __init__(self, y, x, z, participants, n_unstructured, shared_sizes=None):
        codes = pd.factorize(participants, sort=True)[0]
        order = np.argsort(codes, kind="stable")
        starts = np.flatnonzero(np.diff(codes[order], prepend=-1))
        xy = np.column_stack([x, y])[order]
        z = z[order]
        # einsum rather than a matrix product: OpenBLAS' threads, which it uses for
        # products this size, stall for milliseconds when other processes hold the
        # cores (so do the products below that are not per participant).
        self.cross = np.einsum("ia,ib->ab", xy, xy)
        self.z_cross_xy = np.add.reduceat(z[:, :, None] * xy[:, None, :], starts)
        self.z_cross_z = np.add.reduceat(z[:, :, None] * z[:, None, :], starts)
        self.n_observations, self.n_fixed = x.shape
        self.n_participants = len(starts)
        self.n_unstructured, self.n_random = n_unstructured, z.shape[1]
        self.lower = np.tril_indices(n_unstructured)
        if shared_sizes is None:
            shared_sizes = (
                [self.n_random - n_unstructured]
                if self.n_random > n_unstructured
                else []
            )
        if sum(shared_sizes) != self.n_random - n_unstructured:
            raise ValueError(
                f"shared_sizes {list(shared_sizes)} do not add up to the "
                f"{self.n_random - n_unstructured} columns after the unstructured ones"
            )
        ends = n_unstructured + np.cumsum(shared_sizes, dtype=int)
        self.shared_blocks = [
            np.arange(end - size, end) for end, size in zip(ends, shared_sizes)
        ]
        # theta's entries that are standard deviations (not correlation terms)
        self.sd_entries = np.append(
            self.lower[0] == self.lower[1], np.ones(len(shared_sizes), dtype=bool)
        )

    @property
    def shares(self):
        """Whether some random effects share one variance."""
        return bool(self.shared_blocks)

    def default_start(self):
        """lme4's: Lambda the identity."""
        return self.sd_entries.astype(float)

    def restart(self, theta):
        """theta as a start, each sd at zero moved back to the default start: at zero
        the gradient in that sd vanishes by symmetry (the deviance is even in it), so
        the optimiser could never leave."""
        theta = np.array(theta, dtype=float)
        at_zero = self.sd_entries & (np.abs(theta) < SINGULAR_TOLERANCE)
        theta[at_zero] = self.default_start()[at_zero]
        return theta

    def relative_factor(self, theta):
        """Lambda at theta."""
        factor = np.zeros((self.n_random, self.n_random))
        n_lower = len(self.lower[0])
        factor[self.lower] = theta[:n_lower]
        for sd, block in zip(theta[n_lower:], self.shared_blocks):
            factor[block, block] = sd
        return factor

    def _profile(self, theta):
        """Lambda, the A_p, the Cholesky factor of S, r2 and the deviance at theta."""
        factor = self.relative_factor(theta)
        system = factor.T @ self.z_cross_z @ factor + np.eye(self.n_random)
        system_factor = np.linalg.cholesky(system)
        whitened = np.linalg.solve(system_factor, factor.T @ self.z_cross_xy)
        schur = self.cross - np.einsum("pia,pib->ab", whitened, whitened)
        schur_factor = np.linalg.cholesky(schur)
        residual_ss = schur_factor[-1, -1] ** 2
        log_det = 2 * np.log(np.diagonal(system_factor, axis1=1, axis2=2)).sum()
        n = self.n_observations
        deviance = log_det + n * (1 + np.log(2 * np.pi * residual_ss / n))
        return factor, system, schur_factor, residual_ss, deviance

    @staticmethod
    def _fixed_effects(schur_factor):
        return linalg.solve_triangular(
            schur_factor[:-1, :-1], schur_factor[-1, :-1], trans="T", lower=True
        )

    def __call__(self, theta):
        """The deviance and its gradient at theta (see the class docstring)."""
        factor, system, schur_factor, residual_ss, deviance = self._profile(theta)
        beta = self._fixed_effects(schur_factor)
        z_cross_fixed_residual = self.z_cross_xy @ np.append(-beta, 1.0)
        # A_p^-1 Lambda' Z_p'Z_p, and the modes u_p = A_p^-1 Lambda' Z_p'(y_p - X_p b)
        solved = np.linalg.solve(
            system,
            np.concatenate(
                [
                    factor.T @ self.z_cross_z,
                    (z_cross_fixed_residual @ factor)[..., None],
                ],
                axis=2,
            ),
        )
        modes = solved[..., -1]
        z_cross_residual = z_cross_fixed_residual - np.einsum(
            "pij,pj->pi", self.z_cross_z, modes @ factor.T
        )
        # d deviance / d Lambda[i, j]; theta's entries take theirs from it
        by_entry = 2 * solved[..., :-1].sum(axis=0).T - (
            2 * self.n_observations / residual_ss
        ) * (z_cross_residual.T @ modes)
        gradient = np.append(
            by_entry[self.lower],
            [by_entry[block, block].sum() for block in self.shared_blocks],
        )
        return deviance, gradient

    def estimates(self, theta):
        """At theta: the fixed effects, their covariance, the random effects'
        covariance and the residual variance."""
        factor, _, schur_factor, residual_ss, _ = self._profile(theta)
        residual_variance = residual_ss / self.n_observations
        # (R R')^-1 = R^-T R^-1 for S's fixed-effect block R R', by LAPACK's
        # triangular inverse: cho_solve's OpenBLAS threads took 200 times as long
        # when the cores were busy
        inverse_factor, _ = linalg.lapack.dtrtri(schur_factor[:-1, :-1], lower=True)
        beta_covariance = residual_variance * np.einsum(
            "ki,kj->ij", inverse_factor, inverse_factor
        )
        covariance = residual_variance * factor @ factor.T
        return (
            self._fixed_effects(schur_factor),
            beta_covariance,
            covariance,
            residual_variance,
        )


def random_effects_design(data, levels, random_effects, crossover=False, left_out=()):
    """Per-participant random-effect columns of one muscle's model.

    Returns the columns whose effects have an unstructured covariance, and the blocks
    of columns whose effects share one variance, by name. For ``condition_shape``:
    the participant x condition intercepts and, in a crossover study, the participant
    x condition x bin and participant x session x condition intercepts. In a
    crossover study every structure adds the participant x session intercepts, last.
    A participant's sessions are told apart by their period. left_out: names of
    blocks to leave out (for the calibration benchmark).
    """
    blocks = {}
    if random_effects == "intercept":
        unstructured = pd.DataFrame({"Intercept": np.ones(len(data))}, index=data.index)
    else:
        unstructured = _indicators(data, "condition", levels["condition"])
        if random_effects == "condition_shape":
            blocks[CONDITION_INTERCEPT] = unstructured
            if crossover:
                blocks[CONDITION_BIN_INTERCEPT] = _indicators(
                    data, ["condition", "bin"], _product(levels, "condition", "bin")
                )
                blocks[SESSION_CONDITION_INTERCEPT] = _indicators(
                    data,
                    ["period", "condition"],
                    _product(levels, "period", "condition"),
                )
            shape = 1.0 - np.exp(-data["t"].to_numpy(float) / SHAPE_TIME_CONSTANT_S)
            if crossover:
                blocks[SESSION_CONDITION_SHAPE] = (
                    blocks[SESSION_CONDITION_INTERCEPT]
                    .mul(shape, axis=0)
                    .add_suffix(":shape")
                )
            unstructured = unstructured.mul(shape, axis=0).add_suffix(":shape")
    if crossover:
        blocks[SESSION_INTERCEPT] = _indicators(data, "period", levels["period"])
    unknown = set(left_out) - set(blocks)
    if unknown:
        raise ValueError(
            f"cannot leave out {sorted(unknown)}: the random effects are "
            f"{list(blocks)}"
        )
    return unstructured, {
        name: block for name, block in blocks.items() if name not in left_out
    }


def _product(levels, *factors):
    return list(itertools.product(*(levels[factor] for factor in factors)))


def _indicators(data, columns, levels):
    """One indicator column per level of a column (or per tuple of levels of a list
    of columns), named like ``condition[x]`` or ``period[1]:condition[x]``."""
    if isinstance(columns, str):
        columns, levels = [columns], [(level,) for level in levels]
    values = data[columns].to_numpy()
    return pd.DataFrame(
        {
            ":".join(f"{c}[{v}]" for c, v in zip(columns, level)): (
                values == np.array(level, dtype=object)
            )
            .all(axis=1)
            .astype(float)
            for level in levels
        },
        index=data.index,
    )
