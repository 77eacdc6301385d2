// Asymptotic regression of facial-EMG time courses (Korb et al. 2023 reanalysis).
//
//   mu(t) = a + (b - a) * exp(-c * t),  c = exp(log_c)
//
// per muscle x condition cell: a is the asymptote, b the value at t = 0, c the rate.
// Outcome: mean over trials of log EMG relative to baseline (log-ratio scale).
//
// One program serves both models. The drug model has a and log_c per group x cell (a
// "curve") and b per cell; the pooled model is the same program with every participant
// in one group. Each participant x cell "series" has its own asymptote, normal around
// its curve's a with a per-cell sd (muscles and conditions differ in how much
// participants vary, and 40+ participants per cell identify each sd well). With
// rate_deviations each series also has its own log rate, normal around its curve's
// log_c with a per-cell sd: participants differ in how fast they respond, and a model
// that gives them one rate per group takes the group's rate to be far better known
// than it is (without them, null c contrasts' 95% HDIs exclude 0 in 19 of 48 cases
// on the realistic simulated study).
//
// Parameterisation, chosen for sampling speed (benchmarks/stan_drug.py):
// - Stan samples b, a's shifts, log c and the logs of the spreads each divided by a
//   multiplier, its rough posterior sd from least-squares fits (src/mimicry/bayes/
//   data.py). Their scales span 0.001 to 0.5; on the raw scale warm-up ran trees of
//   up to 1023 steps until it had learnt a metric, and a Student-t chain took
//   148,000 leapfrog steps instead of 34,500.
// - Each curve's series are one contiguous block of columns of y. A series' fit
//   needs only three sums over its bins (of rise, rise^2 and y * rise, rise = 1 -
//   exp(-c t)), computed once per evaluation: over curves, or over series with
//   rate deviations.
// - Given b and c, the asymptote a series' data imply is a least-squares fit that
//   moves with c. Sampled directly, the asymptotes and c form a ridge that forces
//   long trajectories. So each curve's a is the precision-weighted mean
//   least-squares value of its series plus a sampled shift (a translation given
//   the rest: Jacobian 1), and each series' own parameters are sampled standardised
//   by their conditional posterior given everything else: value = mean + sd * raw,
//   Jacobian sd. Where the data pin a series down this is the centred form around
//   its fit, where they say little (a flat series, or one whose rate makes its
//   rise tiny) the non-centred form around its curve, and it moves between the two
//   as the sampler moves the spreads: with fixed forms, a posterior of rate_sd that
//   reaches from near 0 (a funnel for the centred form) to where the data constrain
//   the rates (one for the non-centred form) diverged on a table without rate
//   spread (cells_N130.csv: 51 divergences, min bulk ESS 339; now none). The
//   posterior is the same whatever the standardisation.
//   - Series asymptotes (Student-t model): their conditional posterior under a
//     normal likelihood (asymptote_given_fit).
//   - Series log rates (rate deviations): their prior normal(log_c, rate_sd) times
//     a normal approximation of what the series' own data say (series_log_rate and
//     its precision, from a least-squares profile before sampling).
// - The normal model integrates the series asymptotes out exactly. Given b and c a
//   series is y = asymptote * rise + b * (1 - rise) + noise, rise = 1 - exp(-c t), so
//   its least-squares asymptote is normal around the curve's a with variance
//   participant_sd^2 + sigma^2 / sum(rise^2), and its residual sum of squares about
//   that fit is independent of it (sigma^2 chi-square, n_bins - 1 df). Sufficient
//   statistics, no per-observation term, and no series asymptotes: the sampler sees
//   only the curve and cell parameters (and the series rates, with rate
//   deviations), whatever the ratio of participant to bin noise. The asymptotes
//   are drawn from their conditional posterior afterwards.
//
// Crossover studies (crossover = 1): each participant is recorded in one session per
// group, and a series is one participant x session x cell. Its asymptote is
//
//   a[group, cell] + period offset + u[participant, cell] + session deviation,
//
// u ~ normal(0, participant_sd[cell]) shared by the participant's sessions, the
// session deviation ~ normal(0, session_sd[cell]) (the within-participant spread),
// so a group contrast is a comparison within participants. The period offset is
// period_a[period - 1, cell] (period 1: 0) minus its mean over periods, so a is the
// group's curve averaged over periods; per cell, like the group effects, because a
// change between sessions (habituation, electrode placement) need not move every
// condition of a muscle alike. u is integrated out exactly, under either
// likelihood: given the rest, a participant's series asymptotes (normal: their
// least-squares asymptotes) are multivariate normal with covariance diag(v) +
// participant_sd^2 11' (shared_deviation_lpdf), and u is drawn from its conditional
// posterior afterwards. Rates (with rate deviations) stay per series.
functions {
  // Weighted mean of values over each curve's block of series plus shift (groups x
  // cells). Curves are numbered column-major over groups x cells, like to_vector(a).
  matrix curve_means(matrix shift, vector values, vector weight,
                     data array[] int curve_n_series) {
    vector[num_elements(curve_n_series)] means;
    int start = 1;
    for (k in 1 : num_elements(curve_n_series)) {
      int end = start + curve_n_series[k] - 1;
      means[k] = dot_product(weight[start : end], values[start : end])
                 / sum(weight[start : end]);
      start = end + 1;
    }
    return shift + to_matrix(means, rows(shift), cols(shift));
  }

  // Per series, the sums over bins of rise, rise^2 and y * rise (columns), where
  // rise = 1 - exp(-c t) has one column per rate: per curve (series_rate maps a
  // series to its curve, each curve's series one block) or per series.
  matrix rise_sums(vector log_rate, data vector t, data matrix y_matrix,
                   data array[] int series_rate, data array[] int rate_n_series) {
    int n_series = cols(y_matrix);
    // Accurate also where c t is tiny.
    matrix[rows(t), rows(log_rate)] rise = -expm1(-t * exp(log_rate)');
    matrix[n_series, 3] sums;
    vector[rows(log_rate)] rise_sum = (rep_row_vector(1, rows(t)) * rise)';
    vector[rows(log_rate)] rise_square = columns_dot_self(rise)';
    sums[ : , 1] = rise_sum[series_rate];
    sums[ : , 2] = rise_square[series_rate];
    if (rows(log_rate) == n_series) {
      sums[ : , 3] = columns_dot_product(y_matrix, rise)';
    } else {
      int start = 1;
      for (k in 1 : rows(log_rate)) {
        int end = start + rate_n_series[k] - 1;
        sums[start : end, 3] = y_matrix[ : , start : end]' * rise[ : , k];
        start = end + 1;
      }
    }
    return sums;
  }

  // Least-squares asymptote of every series given its b: minimises
  // sum_j (y_j - a * rise_j - b * (1 - rise_j))^2.
  vector least_squares_asymptote(vector b_series, matrix sums) {
    return (sums[ : , 3] - b_series .* (sums[ : , 1] - sums[ : , 2])) ./ sums[ : , 2];
  }

  // Residual sum of squares of every series about its least-squares fit.
  vector least_squares_residual(vector b_series, matrix sums, data vector y_sum,
                                data vector y_square_sum, data int n_bins,
                                vector fitted) {
    return y_square_sum - 2 * b_series .* (y_sum - sums[ : , 3])
           + square(b_series) .* (n_bins - 2 * sums[ : , 1] + sums[ : , 2])
           - square(fitted) .* sums[ : , 2];
  }

  // Sd of each series log rate given its curve's log_c, rate_sd and the normal
  // approximation of its data (precision 0: the data say nothing).
  vector standardising_sd(vector rate_sd_series, data vector precision) {
    return inv_sqrt(inv_square(rate_sd_series) + precision);
  }

  // Series log rates from their standardised form (see participant_log_c_raw).
  vector standardised_log_rate(vector raw, vector curve_log_c, vector rate_sd_series,
                               vector sd, data vector estimate, data vector precision) {
    return square(sd) .* (curve_log_c ./ square(rate_sd_series) + precision .* estimate)
           + sd .* raw;
  }

  // Conditional posterior of each series asymptote under a normal likelihood, given
  // its curve's a, b, its rate and the spreads: its prior normal(a, participant_sd)
  // and its least-squares fit weighted by their precisions. Mean (column 1) and sd.
  matrix asymptote_given_fit(vector fitted, matrix sums, vector sigma_series,
                             vector participant_sd_series, vector a_series) {
    vector[rows(fitted)] fit_precision = sums[ : , 2] ./ square(sigma_series);
    vector[rows(fitted)] prior_precision = inv_square(participant_sd_series);
    vector[rows(fitted)] precision = fit_precision + prior_precision;
    return append_col((fit_precision .* fitted + prior_precision .* a_series)
                      ./ precision,
                      inv_sqrt(precision));
  }

  // Per participant x cell unit (series_unit), the sums over its series of 1 / v and
  // r / v.
  matrix unit_sums(vector r, vector v, data array[] int series_unit, data int n_units) {
    matrix[n_units, 2] sums = rep_matrix(0, n_units, 2);
    for (s in 1 : rows(r)) {
      sums[series_unit[s], 1] += 1 / v[s];
      sums[series_unit[s], 2] += r[s] / v[s];
    }
    return sums;
  }

  // Log density, up to a constant, of series residuals r that share one normal
  // deviation per unit (sd unit_sd) and are independent given it with variances v:
  // per unit, multivariate normal with covariance diag(v) + unit_sd^2 11', by the
  // matrix determinant lemma and the Sherman-Morrison formula.
  real shared_deviation_lpdf(vector r, vector v, vector unit_sd,
                             data array[] int series_unit) {
    matrix[rows(unit_sd), 2] sums = unit_sums(r, v, series_unit, rows(unit_sd));
    vector[rows(unit_sd)] unit_variance = square(unit_sd);
    vector[rows(unit_sd)] scaled = 1 + unit_variance .* sums[ : , 1];
    return -0.5
           * (sum(log(v)) + sum(log(scaled)) + dot_product(r, r ./ v)
              - dot_product(unit_variance, square(sums[ : , 2]) ./ scaled));
  }

  // Draws of the shared deviations from their conditional posterior given the
  // residuals (see shared_deviation_lpdf).
  vector shared_deviation_rng(vector r, vector v, vector unit_sd,
                              data array[] int series_unit) {
    matrix[rows(unit_sd), 2] sums = unit_sums(r, v, series_unit, rows(unit_sd));
    vector[rows(unit_sd)] precision = inv_square(unit_sd) + sums[ : , 1];
    return to_vector(normal_rng(sums[ : , 2] ./ precision, inv_sqrt(precision)));
  }

  // Each series' period offset: period_a of its period (period 1: 0) minus the mean
  // over periods.
  vector period_offset(matrix period_a, data array[] int series_period,
                       data array[] int series_cell) {
    matrix[rows(period_a) + 1, cols(period_a)] by_period
      = append_row(rep_row_vector(0, cols(period_a)), period_a);
    by_period -= rep_matrix(rep_row_vector(1.0 / rows(by_period), rows(by_period))
                            * by_period, rows(by_period));
    vector[num_elements(series_period)] period_shift;
    for (s in 1 : num_elements(series_period)) {
      period_shift[s] = by_period[series_period[s], series_cell[s]];
    }
    return period_shift;
  }

  // Precision of each least-squares asymptote about its curve's a.
  vector fit_weight(vector participant_sd_series, vector sigma_series, matrix sums) {
    return inv(square(participant_sd_series) + square(sigma_series) ./ sums[ : , 2]);
  }
}
data {
  int<lower=1> n_obs;
  int<lower=1> n_series; // participant x cell series, each with all n_bins bins
  int<lower=1> n_cells; // muscle x condition
  int<lower=1> n_groups; // 1 for the pooled model
  int<lower=1> n_bins;
  vector<lower=0>[n_bins] t; // bin centre (s)
  // Series sorted by cell, then group: each group x cell curve is a contiguous block.
  array[n_series] int<lower=1, upper=n_cells> series_cell;
  array[n_series] int<lower=1, upper=n_groups> series_group;
  vector[n_obs] y; // series after series, bins in time order within each
  int<lower=1, upper=n_groups> reference_group;
  int<lower=0, upper=1> student_t; // 1: Student-t likelihood, 0: normal
  int<lower=0, upper=1> rate_deviations; // 1: each series has its own log rate
  int<lower=0, upper=1> prior_only; // 1: ignore y, draw from the prior
  // What each series' data alone say about its log rate: the mean and precision of
  // a normal approximation (rate deviations outside prior-only mode).
  vector[rate_deviations && !prior_only ? n_series : 0] series_log_rate;
  vector<lower=0>[rate_deviations && !prior_only ? n_series : 0]
    series_log_rate_precision;
  // Rough posterior sds of the parameters below, from least-squares fits (ones in
  // prior-only mode): Stan samples each divided by its multiplier, so that all are
  // on a similar scale before warm-up has learnt one (src/mimicry/bayes/data.py).
  vector<lower=0>[n_cells] b_multiplier;
  matrix<lower=0>[n_groups, n_cells] a_shift_multiplier;
  matrix<lower=0>[n_groups, n_cells] log_c_multiplier;
  vector<lower=0>[n_cells] log_participant_sd_multiplier;
  vector<lower=0>[n_cells] log_sigma_multiplier;
  vector<lower=0>[rate_deviations ? n_cells : 0] log_rate_sd_multiplier;
  // Crossover: the participant x cell unit and the period (1-based session order) of
  // each series, and the multipliers of the crossover's parameters.
  int<lower=0, upper=1> crossover;
  int<lower=0> n_units;
  array[crossover ? n_series : 0] int<lower=1, upper=n_units> series_unit;
  int<lower=1> n_periods; // 1 outside a crossover
  array[crossover ? n_series : 0] int<lower=1, upper=n_periods> series_period;
  vector<lower=0>[crossover ? n_cells : 0] log_session_sd_multiplier;
  matrix<lower=0>[n_periods - 1, n_cells] period_a_multiplier;
}
transformed data {
  int n_curves = n_groups * n_cells; // curve k = group + n_groups * (cell - 1)
  array[n_series] int series_curve;
  array[n_curves] int curve_n_series = rep_array(0, n_curves);
  for (s in 1 : n_series) {
    series_curve[s] = series_group[s] + n_groups * (series_cell[s] - 1);
    curve_n_series[series_curve[s]] += 1;
  }
  int sampled_rates = rate_deviations && !prior_only;
  // Which rate each series follows in rise_sums: its own where sampled.
  array[n_series] int series_rate = series_curve;
  array[sampled_rates ? n_series : n_curves] int rate_n_series;
  if (sampled_rates) {
    for (s in 1 : n_series) {
      series_rate[s] = s;
      rate_n_series[s] = 1;
    }
  } else {
    rate_n_series = curve_n_series;
  }
  matrix[n_bins, n_series] y_matrix = to_matrix(y, n_bins, n_series);
  vector[n_series] y_sum = (rep_row_vector(1, n_bins) * y_matrix)';
  vector[n_series] y_square_sum = columns_dot_self(y_matrix)';
  array[n_units] int unit_cell;
  for (s in 1 : (crossover ? n_series : 0)) {
    unit_cell[series_unit[s]] = series_cell[s];
  }
  array[n_groups - 1] int contrast_group;
  {
    int k = 1;
    for (g in 1 : n_groups) {
      if (g != reference_group) {
        contrast_group[k] = g;
        k += 1;
      }
    }
  }
}
parameters {
  // a minus its curve's weighted mean least-squares asymptote; a itself in
  // prior-only mode. Its prior is stated on a in the model block.
  matrix<multiplier=a_shift_multiplier>[n_groups, n_cells] a_shift;
  vector<multiplier=b_multiplier>[n_cells] b;
  matrix<multiplier=log_c_multiplier>[n_groups, n_cells] log_c;
  // The spreads on the log scale: a multiplier cannot go with a lower bound.
  vector<multiplier=log_participant_sd_multiplier>[n_cells] log_participant_sd;
  vector<multiplier=log_sigma_multiplier>[n_cells] log_sigma;
  // Degrees of freedom shared by all cells: tail weight is a property of the
  // recording and outlier process, and one nu is far better identified than twelve.
  array[student_t] real<lower=1> nu;
  // Series asymptotes (Student-t model only) standardised: asymptote = mean + sd *
  // raw, with the mean and sd of its conditional posterior under a normal likelihood
  // (asymptote_given_fit); prior stated on the asymptote. Without data there is
  // nothing to standardise by: prior-only draws of the asymptotes come from the
  // hierarchical prior in generated quantities.
  vector[prior_only || !student_t ? 0 : n_series] participant_a_raw;
  // Spread of the series log rates around their curve's, and (outside prior-only
  // mode, where they are drawn in generated quantities) the log rates standardised:
  // log rate = mean + sd * raw, with mean and sd those of its conditional posterior
  // under the normal approximation of its data (standardised_log_rate).
  vector<multiplier=log_rate_sd_multiplier>[rate_deviations ? n_cells : 0]
    log_rate_sd;
  vector[sampled_rates ? n_series : 0] participant_log_c_raw;
  // Crossover: the within-participant spread of series asymptotes (log scale) and
  // the asymptote in each later period minus in period 1.
  vector<multiplier=log_session_sd_multiplier>[crossover ? n_cells : 0]
    log_session_sd;
  matrix<multiplier=period_a_multiplier>[n_periods - 1, n_cells] period_a;
}
transformed parameters {
  vector<lower=0>[n_cells] participant_sd = exp(log_participant_sd);
  vector<lower=0>[n_cells] sigma = exp(log_sigma);
  vector<lower=0>[rate_deviations ? n_cells : 0] rate_sd = exp(log_rate_sd);
  vector<lower=0>[crossover ? n_cells : 0] session_sd = exp(log_session_sd);
}
model {
  vector[sampled_rates ? n_series : 0] participant_log_c;
  vector[sampled_rates ? n_series : 0] rate_sd_given_data;
  if (sampled_rates) {
    rate_sd_given_data = standardising_sd(rate_sd[series_cell],
                                          series_log_rate_precision);
    participant_log_c = standardised_log_rate(participant_log_c_raw,
                                              to_vector(log_c)[series_curve],
                                              rate_sd[series_cell],
                                              rate_sd_given_data, series_log_rate,
                                              series_log_rate_precision);
  }
  vector[n_series] b_series = b[series_cell];
  vector[n_series] sigma_series = sigma[series_cell];
  // Unused in prior-only mode, where they cost one cheap evaluation.
  matrix[n_series, 3] sums = rise_sums(sampled_rates ? participant_log_c
                                                     : to_vector(log_c),
                                       t, y_matrix, series_rate, rate_n_series);
  vector[n_series] fitted = least_squares_asymptote(b_series, sums);
  vector[crossover ? n_series : 0] period_shift;
  // Sd of a series asymptote around its curve's a (and the period offset).
  vector[n_series] spread_series;
  if (crossover) {
    period_shift = period_offset(period_a, series_period, series_cell);
    spread_series = sqrt(square(participant_sd[series_cell])
                         + square(session_sd[series_cell]));
  } else {
    spread_series = participant_sd[series_cell];
  }
  matrix[n_groups, n_cells] a
    = prior_only ? a_shift
                 : curve_means(a_shift, crossover ? fitted - period_shift : fitted,
                               fit_weight(spread_series, sigma_series, sums),
                               curve_n_series);
  vector[n_series] a_series = crossover ? to_vector(a)[series_curve] + period_shift
                                        : to_vector(a)[series_curve];

  // Log-ratio scale: a = +-1 would be a 2.7-fold change of EMG amplitude, far beyond
  // mimicry (~10-20%), so normal(0, 0.5) is wide yet excludes absurd asymptotes.
  to_vector(a) ~ normal(0, 0.5);
  // Baseline correction puts the response at t = 0 near zero.
  b ~ normal(0, 0.2);
  // Median rate 0.5/s (time constant 2 s); 95% between 0.07/s and 3.6/s, i.e. time
  // constants from 0.3 s to 14 s around the 6 s response window.
  to_vector(log_c) ~ normal(log(0.5), 1);
  // Spread of participants' asymptotes and of bin means around a participant's curve:
  // a scale of 0.3 (a 35% amplitude change) is generous for trial-averaged signals.
  participant_sd ~ normal(0, 0.3);
  sigma ~ normal(0, 0.3);
  // Jacobian of the log scale, so that the priors above are the spreads' priors.
  target += sum(log_participant_sd) + sum(log_sigma) + sum(log_rate_sd);
  // Within-participant spread: as generous as the spread between participants. A
  // period effect as large as a asymptote itself is implausible: the same scale.
  session_sd ~ normal(0, 0.3);
  target += sum(log_session_sd);
  to_vector(period_a) ~ normal(0, 0.5);
  // Juarez & Steel (2010), also brms' default: from near-Cauchy tails to near-normal.
  nu ~ gamma(2, 0.1);
  // Participants' log rates: a scale of 0.5 (rates 40% slower to 65% faster) allows
  // the spread of time constants seen across people without fixing it.
  rate_sd ~ normal(0, 0.5);
  // Each series log rate around its curve's, with the Jacobian of the
  // standardisation.
  if (sampled_rates) {
    target += normal_lupdf(participant_log_c | to_vector(log_c)[series_curve],
                                               rate_sd[series_cell])
              + sum(log(rate_sd_given_data));
  }

  if (!prior_only && student_t) {
    matrix[n_series, 2] given_fit = asymptote_given_fit(fitted, sums, sigma_series,
                                                        spread_series, a_series);
    vector[n_series] participant_a = given_fit[ : , 1]
                                     + given_fit[ : , 2] .* participant_a_raw;
    // The Jacobian of the standardisation is the conditional sd.
    target += (crossover
                 ? shared_deviation_lpdf(participant_a - a_series |
                                         square(session_sd[series_cell]),
                                         participant_sd[unit_cell], series_unit)
                 : normal_lupdf(participant_a | a_series, spread_series))
              + sum(log(given_fit[ : , 2]));
    matrix[n_bins, n_series] decay
      = exp(-t * exp(sampled_rates ? participant_log_c
                                   : to_vector(log_c)[series_curve])');
    matrix[n_bins, n_series] mu = rep_matrix(participant_a', n_bins)
                                  + decay
                                    .* rep_matrix((b_series - participant_a)', n_bins);
    to_vector(y_matrix) ~ student_t(nu[1], to_vector(mu),
                                    to_vector(rep_matrix(sigma_series', n_bins)));
  } else if (!prior_only) {
    // The least-squares asymptote's spread: participants (and sessions) plus the
    // fit's own error.
    if (crossover) {
      target += shared_deviation_lpdf(fitted - a_series |
                                      square(session_sd[series_cell])
                                      + square(sigma_series) ./ sums[ : , 2],
                                      participant_sd[unit_cell], series_unit);
    } else {
      target += normal_lupdf(fitted | a_series,
                                      sqrt(square(spread_series)
                                           + square(sigma_series) ./ sums[ : , 2]));
    }
    // The rest of the series' likelihood: its residual sum of squares about the fit,
    // and the Jacobian of the fit, 1 / sqrt(sum(rise^2)).
    target += -(n_bins - 1) * sum(log(sigma_series))
              - 0.5 * sum(least_squares_residual(b_series, sums, y_sum, y_square_sum,
                                                 n_bins, fitted)
                          ./ square(sigma_series))
              - 0.5 * sum(log(sums[ : , 2]));
  }
}
generated quantities {
  // Series asymptotes (and rates, with rate deviations); in prior-only mode drawn
  // from the hierarchical prior. y_rep and log_lik follow from these, b, c, sigma
  // and nu: computed outside the sampler (src/mimicry/bayes/predictive.py), whose
  // output they would multiply tenfold.
  vector[n_series] participant_a;
  vector[rate_deviations ? n_series : 0] participant_c;
  // Crossover: each participant's deviation u per cell (unit), shared by sessions.
  vector[crossover ? n_units : 0] participant_deviation;
  matrix[n_groups, n_cells] a;
  matrix[n_groups, n_cells] c = exp(log_c);
  matrix[n_groups - 1, n_cells] contrast_a;
  matrix[n_groups - 1, n_cells] contrast_c;
  if (sampled_rates) {
    vector[n_series] rate_sd_series = rate_sd[series_cell];
    participant_c = exp(standardised_log_rate(participant_log_c_raw,
                                              to_vector(log_c)[series_curve],
                                              rate_sd_series,
                                              standardising_sd(rate_sd_series,
                                                               series_log_rate_precision),
                                              series_log_rate,
                                              series_log_rate_precision));
  } else if (rate_deviations) {
    participant_c = exp(to_vector(normal_rng(to_vector(log_c)[series_curve],
                                             rate_sd[series_cell])));
  }
  if (prior_only && crossover) {
    a = a_shift;
    participant_deviation = to_vector(normal_rng(rep_vector(0, n_units),
                                                 participant_sd[unit_cell]));
    participant_a = to_vector(normal_rng(to_vector(a)[series_curve]
                                         + period_offset(period_a, series_period,
                                                         series_cell)
                                         + participant_deviation[series_unit],
                                         session_sd[series_cell]));
  } else if (prior_only) {
    a = a_shift;
    participant_a = to_vector(normal_rng(to_vector(a)[series_curve],
                                         participant_sd[series_cell]));
  } else {
    vector[n_series] sigma_series = sigma[series_cell];
    matrix[n_series, 3] sums = rise_sums(sampled_rates ? log(participant_c)
                                                       : to_vector(log_c),
                                         t, y_matrix, series_rate, rate_n_series);
    vector[n_series] fitted = least_squares_asymptote(b[series_cell], sums);
    if (crossover) {
      // As in the model block; u and the series asymptotes given u from their
      // conditional posteriors (Student-t: given the sampled series asymptotes).
      vector[n_series] period_shift = period_offset(period_a, series_period,
                                                    series_cell);
      vector[n_series] session_sd_series = session_sd[series_cell];
      vector[n_series] spread_series = sqrt(square(participant_sd[series_cell])
                                            + square(session_sd_series));
      a = curve_means(a_shift, fitted - period_shift,
                      fit_weight(spread_series, sigma_series, sums), curve_n_series);
      vector[n_series] a_series = to_vector(a)[series_curve] + period_shift;
      if (student_t) {
        matrix[n_series, 2] given_fit = asymptote_given_fit(fitted, sums,
                                                            sigma_series,
                                                            spread_series, a_series);
        participant_a = given_fit[ : , 1] + given_fit[ : , 2] .* participant_a_raw;
        participant_deviation = shared_deviation_rng(participant_a - a_series,
                                                     square(session_sd_series),
                                                     participant_sd[unit_cell],
                                                     series_unit);
      } else {
        participant_deviation = shared_deviation_rng(fitted - a_series,
                                                     square(session_sd_series)
                                                     + square(sigma_series)
                                                       ./ sums[ : , 2],
                                                     participant_sd[unit_cell],
                                                     series_unit);
        matrix[n_series, 2] given_fit
          = asymptote_given_fit(fitted, sums, sigma_series, session_sd_series,
                                a_series + participant_deviation[series_unit]);
        participant_a = to_vector(normal_rng(given_fit[ : , 1], given_fit[ : , 2]));
      }
    } else {
      a = curve_means(a_shift, fitted,
                      fit_weight(participant_sd[series_cell], sigma_series, sums),
                      curve_n_series);
      matrix[n_series, 2] given_fit = asymptote_given_fit(fitted, sums, sigma_series,
                                                          participant_sd[series_cell],
                                                          to_vector(a)[series_curve]);
      if (student_t) {
        participant_a = given_fit[ : , 1] + given_fit[ : , 2] .* participant_a_raw;
      } else {
        // The normal model's asymptotes, from their exact conditional posterior.
        participant_a = to_vector(normal_rng(given_fit[ : , 1], given_fit[ : , 2]));
      }
    }
  }
  contrast_a = a[contrast_group] - rep_matrix(a[reference_group], n_groups - 1);
  contrast_c = c[contrast_group] - rep_matrix(c[reference_group], n_groups - 1);
}
